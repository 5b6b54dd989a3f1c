package bench

import (
	"context"
	"fmt"
	"math/rand"
	"time"
)

// bigTxnName prefixes the rows of the big-transaction workload.
const bigTxnName = "big txns, WAL"

// bigTxnRounds is how often the big-transaction steps repeat; each row is
// the sum over the rounds, so that one step of some 50 ms is not all noise.
const bigTxnRounds = 3

// bigTxns is our own workload of large transactions on a table with three
// indexes (an INT PRIMARY KEY, which is an index of its own, and two more),
// in WAL mode with SQLite's default synchronous=FULL, on a database created
// and reopened first: per round one transaction each of c.BigRows INSERTs,
// 1.4×BigRows REPLACEs (half of them of existing rows), BigRows UPDATEs and
// BigRows/2 DELETEs, then a VACUUM and a checkpoint(TRUNCATE). It reports
// each step's time summed over the rounds, and the total.
func bigTxns(ctx context.Context, dir string, c Config) ([]Result, error) {
	path, err := fresh(dir, "bigtxn.db")
	if err != nil {
		return nil, err
	}
	db, err := create(path, "WAL", "FULL", "CREATE TABLE t(a INT PRIMARY KEY, b INTEGER NOT NULL, c TEXT NOT NULL, d BLOB);"+
		"CREATE INDEX tb ON t(b); CREATE INDEX tc ON t(c)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := c.settle(); err != nil {
		return nil, err
	}
	s := &stepper{ctx: ctx, conn: conn}
	n := c.BigRows
	names := []string{
		fmt.Sprintf("%s INSERTs (1 txn)", Thousands(n)),
		fmt.Sprintf("%s REPLACEs (1 txn)", Thousands(n*7/5)),
		fmt.Sprintf("%s UPDATEs (1 txn)", Thousands(n)),
		fmt.Sprintf("%s DELETEs (1 txn)", Thousands(n/2)),
		"VACUUM",
		"wal_checkpoint(TRUNCATE)",
	}
	rng := rand.New(rand.NewSource(7))
	payload := make([]byte, 100)
	var keys []int // keys inserted so far (deleted ones stay: a DELETE of one is a no-op)
	some := func() int { return keys[rng.Intn(len(keys))] }
	row := func(k int) []any { return []any{k, rng.Intn(1 << 30), numberName(rng.Intn(1 << 20)), payload} }
	for round := range bigTxnRounds {
		base := round * 10 * n
		perm := rng.Perm(10 * n)
		s.step(names[0], func() error {
			return s.tx(func() error {
				return s.repeat("INSERT INTO t VALUES(?,?,?,?)", n, func(i int) []any {
					k := base + perm[i]
					keys = append(keys, k)
					return row(k)
				})
			})
		})
		s.step(names[1], func() error {
			return s.tx(func() error {
				return s.repeat("REPLACE INTO t VALUES(?,?,?,?)", n*7/5, func(i int) []any {
					if i%2 == 0 {
						return row(some())
					}
					k := -(base + i + 1) // negative keys: new rows
					keys = append(keys, k)
					return row(k)
				})
			})
		})
		s.step(names[2], func() error {
			return s.tx(func() error {
				return s.repeat("UPDATE t SET b = ?, c = ? WHERE a = ?", n, func(int) []any {
					return []any{rng.Intn(1 << 30), numberName(rng.Intn(1 << 20)), some()}
				})
			})
		})
		s.step(names[3], func() error {
			return s.tx(func() error {
				return s.repeat("DELETE FROM t WHERE a = ?", n/2, func(int) []any { return []any{some()} })
			})
		})
		s.step(names[4], func() error { return s.exec("VACUUM") })
		s.step(names[5], func() error { return s.exec("PRAGMA wal_checkpoint(TRUNCATE)") })
	}
	if s.err != nil {
		return nil, s.err
	}
	sums := make([]float64, len(names))
	for i, st := range s.steps {
		sums[i%len(names)] += st.Seconds
	}
	prefix := fmt.Sprintf("%s (%d rounds): ", bigTxnName, bigTxnRounds)
	var out []Result
	for i, name := range names {
		out = append(out, Duration(prefix+name, time.Duration(sums[i]*float64(time.Second))))
	}
	return append(out, Duration(prefix+"total", s.total())), nil
}
