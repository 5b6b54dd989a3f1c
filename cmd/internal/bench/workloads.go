package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Result is one row's figure on one target in one run.
type Result struct {
	Workload string  `json:"workload"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Ops      int     `json:"ops"`
	Seconds  float64 `json:"seconds"`
	// LowerIsBetter marks durations (unit "s"): the speed ratio of two
	// targets is then native/mount instead of mount/native.
	LowerIsBetter bool   `json:"lower_is_better,omitempty"`
	Run           int    `json:"run,omitempty"`
	Steps         []Step `json:"steps,omitempty"`
}

// Step is the time of one step of a multi-step workload.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Rate is a throughput result: ops per second.
func Rate(name, unit string, ops int, elapsed time.Duration) Result {
	return Result{Workload: name, Unit: unit, Ops: ops, Seconds: elapsed.Seconds(), Value: float64(ops) / elapsed.Seconds()}
}

// Duration is a result measured as a time: lower is better.
func Duration(name string, elapsed time.Duration) Result {
	return Result{Workload: name, Unit: "s", Seconds: elapsed.Seconds(), Value: elapsed.Seconds(), LowerIsBetter: true}
}

// Workload is a named benchmark body. dir is where its databases live. A
// workload yields one result per row it reports (several for one timed in
// steps).
type Workload struct {
	Name string
	Run  func(ctx context.Context, dir string, cfg Config) ([]Result, error)
	// Fresh asks for a mount of its own, started for the workload and
	// stopped after it: what the workload leaves in walfs (a thousand
	// databases it has served) would slow every workload after it.
	Fresh bool
}

// Config sizes the workloads.
type Config struct {
	Duration  time.Duration // how long each timed workload runs
	ReadDBMB  int           // size of the point-read database
	Writers   int           // concurrent connections (one process) and processes
	BatchRows int           // rows per transaction in the batch workload
	SmallDBs  int           // databases in the many-small-databases workload
	MixedSize int           // size of the mixed workload, as speedtest1's --size
	BigRows   int           // rows per insert transaction in the big-transaction workload
	Only      string        // run only workloads whose name contains this; "" runs all
	// Settle, when set, waits until the target has no background work left
	// (a walfs mount: until the replica holds every commit). Workloads call
	// it after their setup, so that replicating the setup (a 200 MB
	// database for the point reads) does not compete with what is timed.
	Settle func() error
	// Worker returns the command of one writer process for the
	// several-processes workload (see RunWorker); nil skips the workload.
	Worker func(db, syncMode string, d time.Duration) []string
}

func (c Config) settle() error {
	if c.Settle == nil {
		return nil
	}
	return c.Settle()
}

// Selected reports whether the workload called name is to run.
func (c Config) Selected(name string) bool {
	return c.Only == "" || strings.Contains(name, c.Only)
}

// Standard returns the workloads in report order.
func Standard(c Config) []Workload {
	rate := func(name, unit string, f func(ctx context.Context, dir string, c Config) (int, time.Duration, error)) Workload {
		return Workload{Name: name, Run: func(ctx context.Context, dir string, c Config) ([]Result, error) {
			ops, elapsed, err := f(ctx, dir, c)
			return []Result{Rate(name, unit, ops, elapsed)}, err
		}}
	}
	small := rate(fmt.Sprintf("create %s small dbs (WAL; create, 5 inserts, close)", Thousands(c.SmallDBs)), "dbs/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
		return createSmall(ctx, filepath.Join(dir, "small"), c.SmallDBs)
	})
	small.Fresh = true
	return []Workload{
		rate("1-row txns, WAL, synchronous=NORMAL", "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "WAL", "NORMAL", 1, c)
		}),
		rate("1-row txns, WAL, synchronous=FULL", "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "WAL", "FULL", 1, c)
		}),
		rate("1-row txns, DELETE journal, synchronous=FULL", "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "DELETE", "FULL", 1, c)
		}),
		rate(fmt.Sprintf("%s-row txns, WAL", Thousands(c.BatchRows)), "rows/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return batchRows(ctx, dir, c.BatchRows, c)
		}),
		rate(fmt.Sprintf("random point reads, %d MiB db (warm)", c.ReadDBMB), "reads/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return pointReads(ctx, dir, c.ReadDBMB, c)
		}),
		rate(fmt.Sprintf("%d writer connections in one process, WAL", c.Writers), "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "WAL", "NORMAL", c.Writers, c)
		}),
		rate(fmt.Sprintf("%d processes writing one WAL db", c.Writers), "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return processes(ctx, dir, c.Writers, c)
		}),
		{Name: fmt.Sprintf("mixed (speedtest1-like, size %d), WAL", c.MixedSize), Run: func(ctx context.Context, dir string, c Config) ([]Result, error) {
			return mixed(ctx, dir, "WAL", fmt.Sprintf("mixed (speedtest1-like, size %d), WAL", c.MixedSize), c)
		}},
		{Name: fmt.Sprintf("mixed (speedtest1-like, size %d), DELETE journal", c.MixedSize), Run: func(ctx context.Context, dir string, c Config) ([]Result, error) {
			return mixed(ctx, dir, "DELETE", fmt.Sprintf("mixed (speedtest1-like, size %d), DELETE journal", c.MixedSize), c)
		}},
		{Name: bigTxnName, Run: bigTxns},
		small,
	}
}

// Thousands formats n with comma separators, as the report does.
func Thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// open opens path with a journal mode (WAL, DELETE) and synchronous setting.
func open(path, journal, syncMode string) (*sql.DB, error) {
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(%s)&_pragma=synchronous(%s)&_pragma=busy_timeout(10000)", path, journal, syncMode)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// create makes a database with schema, closes it and opens it again, so the
// measured connections find an existing database, as an application does
// at every start but its first. (On a walfs mount with passthrough capture
// only such connections write a WAL database's file without a FUSE round
// trip per page; see fusefs/dbfile.go. The mixed workload measures the
// creating connection.)
func create(path, journal, syncMode, schema string) (*sql.DB, error) {
	db, err := open(path, journal, syncMode)
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return open(path, journal, syncMode)
}

// fresh removes what an earlier run left of database name in dir.
func fresh(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return "", err
		}
	}
	return path, nil
}

// singleRow commits one-row transactions from writers connections.
func singleRow(ctx context.Context, dir, journal, syncMode string, writers int, c Config) (int, time.Duration, error) {
	d := c.Duration
	path, err := fresh(dir, fmt.Sprintf("single-%s-%s-%d.db", journal, syncMode, writers))
	if err != nil {
		return 0, 0, err
	}
	db, err := create(path, journal, syncMode, "create table t(id integer primary key, v blob)")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(writers)
	if err := c.settle(); err != nil {
		return 0, 0, err
	}
	var (
		mu    sync.Mutex
		total int
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(ctx)
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				return
			}
			defer conn.Close()
			payload := make([]byte, 100)
			n := 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := conn.ExecContext(ctx, "insert into t(v) values (?)", payload); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				n++
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total, time.Since(start), first
}

// batchRows commits transactions of rows rows each; ops counts rows.
func batchRows(ctx context.Context, dir string, rows int, c Config) (int, time.Duration, error) {
	d := c.Duration
	path, err := fresh(dir, "batch.db")
	if err != nil {
		return 0, 0, err
	}
	db, err := create(path, "WAL", "NORMAL", "create table t(id integer primary key, k integer, v blob)")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := c.settle(); err != nil {
		return 0, 0, err
	}
	payload := make([]byte, 100)
	total := 0
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return total, time.Since(start), err
		}
		stmt, err := tx.Prepare("insert into t(k, v) values (?, ?)")
		if err != nil {
			tx.Rollback()
			return total, time.Since(start), err
		}
		for i := 0; i < rows; i++ {
			if _, err := stmt.Exec(i, payload); err != nil {
				tx.Rollback()
				return total, time.Since(start), err
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return total, time.Since(start), err
		}
		total += rows
	}
	return total, time.Since(start), nil
}

// pointReads builds a database of about mb MiB, warms it, then reads random
// rows by primary key.
func pointReads(ctx context.Context, dir string, mb int, c Config) (int, time.Duration, error) {
	d := c.Duration
	path, err := fresh(dir, "reads.db")
	if err != nil {
		return 0, 0, err
	}
	db, err := open(path, "WAL", "NORMAL")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("create table t(id integer primary key, v blob)"); err != nil {
		return 0, 0, err
	}
	const rowBytes = 1000
	rows := mb << 20 / rowBytes
	tx, err := db.Begin()
	if err != nil {
		return 0, 0, err
	}
	payload := make([]byte, rowBytes)
	for i := 1; i <= rows; i++ {
		if _, err := tx.Exec("insert into t(id, v) values (?, ?)", i, payload); err != nil {
			tx.Rollback()
			return 0, 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	if _, err := db.Exec("pragma wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, 0, err
	}
	if err := c.settle(); err != nil {
		return 0, 0, err
	}
	var n int
	if err := db.QueryRow("select count(length(v)) from t").Scan(&n); err != nil { // warm the cache
		return 0, 0, err
	}
	stmt, err := db.Prepare("select length(v) from t where id = ?")
	if err != nil {
		return 0, 0, err
	}
	defer stmt.Close()
	rng := rand.New(rand.NewSource(1))
	total := 0
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		if err := stmt.QueryRow(1 + rng.Intn(rows)).Scan(&n); err != nil {
			return total, time.Since(start), err
		}
		total++
	}
	return total, time.Since(start), nil
}

// Fill writes a database of about mb MiB in 1,000-row transactions of
// 1,000-byte rows, as an application loading data would.
func Fill(ctx context.Context, dir string, mb int) error {
	path, err := fresh(dir, "fill.db")
	if err != nil {
		return err
	}
	db, err := open(path, "WAL", "NORMAL")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("create table t(id integer primary key, v blob)"); err != nil {
		return err
	}
	payload := make([]byte, 1000)
	rng := rand.New(rand.NewSource(1))
	for written := 0; written < mb<<20 && ctx.Err() == nil; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for range 1000 {
			rng.Read(payload) // incompressible, like most real data after compression
			if _, err := tx.Exec("insert into t(v) values (?)", payload); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		written += 1000 * len(payload)
	}
	return ctx.Err()
}
