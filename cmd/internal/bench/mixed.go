package bench

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
)

// mixed is a mixed workload in the spirit of SQLite's speedtest1 (its main
// test set): bulk inserts into tables without and with indexes, indexed
// and unindexed queries, index creation, a VACUUM, an added column,
// UPDATEs and DELETEs by range and by key, REPLACE refills, joins, point
// reads, integrity_check and ANALYZE. It is our own code with our own
// statements and sizes, not speedtest1, and its times are not comparable
// with speedtest1's. As speedtest1 does, it runs on one connection that
// creates the database (SQLite's default synchronous=FULL) and times every
// step; the result is the sum. size scales it as speedtest1's --size: the
// big tables have 500×size rows.
func mixed(ctx context.Context, dir, journal, name string, c Config) ([]Result, error) {
	path, err := fresh(dir, "mixed-"+journal+".db")
	if err != nil {
		return nil, err
	}
	db, err := open(path, journal, "FULL")
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
	s := &stepper{ctx: ctx, conn: conn}
	mixedSteps(s, c.MixedSize)
	if s.err != nil {
		return nil, s.err
	}
	r := Duration(name, s.total())
	r.Steps = s.steps
	return []Result{r}, nil
}

// mixedSteps runs the mixed workload's steps on s.
func mixedSteps(s *stepper, size int) {
	sz := 500 * size
	rng := rand.New(rand.NewSource(42))
	perm := rng.Perm(sz) // distinct keys in random order
	n5 := max(sz/5, 1)
	between := func(int) []any { x := rng.Intn(sz); return []any{x, x + 10} }
	key := func(int) []any { return []any{rng.Intn(sz) + 1} }
	ins := func(table string, row func(i int) []any) func() error {
		return func() error {
			return s.tx(func() error {
				return s.repeat("INSERT INTO "+table+" VALUES(?,?,?)", sz, row)
			})
		}
	}
	n := strconv.Itoa

	s.step(n(sz)+" INSERTs, no index", func() error {
		if err := s.exec("CREATE TABLE z1(a INTEGER NOT NULL, b INTEGER NOT NULL, c TEXT NOT NULL)"); err != nil {
			return err
		}
		return ins("z1", func(i int) []any { return []any{perm[i] + 1, i + 1, numberName(perm[i] + 1)} })()
	})
	s.step(n(sz)+" ordered INSERTs, integer PK", func() error {
		if err := s.exec("CREATE TABLE z2(a INTEGER PRIMARY KEY, b INTEGER NOT NULL, c TEXT NOT NULL)"); err != nil {
			return err
		}
		return ins("z2", func(i int) []any { return []any{i + 1, perm[i] + 1, numberName(perm[i] + 1)} })()
	})
	s.step(n(sz)+" unordered INSERTs, integer PK", func() error {
		if err := s.exec("CREATE TABLE t3(a INTEGER PRIMARY KEY, b INTEGER NOT NULL, c TEXT NOT NULL)"); err != nil {
			return err
		}
		return ins("t3", func(i int) []any { return []any{perm[i] + 1, i + 1, numberName(i + 1)} })()
	})
	s.step("25 unindexed range scans", func() error {
		return s.tx(func() error {
			return s.repeat("SELECT count(*), avg(b), sum(length(c)) FROM z1 WHERE b BETWEEN ? AND ?", 25,
				func(int) []any { x := rng.Intn(sz); return []any{x, x + sz/10} })
		})
	})
	s.step("25 unindexed LIKE scans", func() error {
		return s.tx(func() error {
			return s.repeat("SELECT count(*) FROM z1 WHERE c LIKE ?", 25,
				func(i int) []any { return []any{"%" + numberName(i+1) + "%"} })
		})
	})
	s.step("CREATE INDEX five times", func() error {
		return s.tx(func() error {
			return s.exec("CREATE INDEX z1b ON z1(b)", "CREATE INDEX z1c ON z1(c)", "CREATE INDEX z2b ON z2(b)",
				"CREATE INDEX t3b ON t3(b)", "CREATE INDEX t3c ON t3(c)")
		})
	})
	s.step(n(n5)+" indexed range SELECTs", func() error {
		return s.tx(func() error {
			return s.repeat("SELECT count(*), avg(a) FROM z1 WHERE b BETWEEN ? AND ?", n5, between)
		})
	})
	s.step(n(n5)+" indexed text range SELECTs", func() error {
		return s.tx(func() error {
			return s.repeat("SELECT count(*) FROM z1 WHERE c BETWEEN ? AND ?", n5, func(int) []any {
				a := numberName(rng.Intn(sz) + 1)
				return []any{a, a + "z"}
			})
		})
	})
	s.step(n(sz)+" INSERTs into a table with 3 indexes", func() error {
		return s.tx(func() error {
			return s.exec("CREATE TABLE t4(a INT PRIMARY KEY, b INTEGER NOT NULL, c TEXT NOT NULL)",
				"CREATE INDEX t4b ON t4(b)", "CREATE INDEX t4c ON t4(c)", "INSERT INTO t4 SELECT a, b, c FROM z1")
		})
	})
	s.step("DELETE and refill a table", func() error {
		return s.exec("DELETE FROM z2", "INSERT INTO z2 SELECT a, b, c FROM z1")
	})
	s.step("VACUUM", func() error { return s.exec("VACUUM") })
	s.step("ALTER TABLE ADD COLUMN, query", func() error {
		return s.exec("ALTER TABLE z2 ADD COLUMN d INTEGER DEFAULT 7", "SELECT sum(d) FROM z2")
	})
	s.step(n(n5)+" indexed range UPDATEs", func() error {
		return s.tx(func() error { return s.repeat("UPDATE z2 SET d = b*2 WHERE b BETWEEN ? AND ?", n5, between) })
	})
	s.step(n(sz)+" UPDATEs by key", func() error {
		return s.tx(func() error { return s.repeat("UPDATE z2 SET d = b*3 WHERE a = ?", sz, key) })
	})
	s.step("one UPDATE of every row", func() error { return s.exec("UPDATE z2 SET d = b*4") })
	s.step(n(n5)+" indexed range DELETEs", func() error {
		return s.tx(func() error { return s.repeat("DELETE FROM z2 WHERE b BETWEEN ? AND ?", n5, between) })
	})
	s.step(n(sz)+" DELETEs by key", func() error {
		return s.tx(func() error { return s.repeat("DELETE FROM t3 WHERE a = ?", sz, key) })
	})
	s.step("REPLACE-refill two tables", func() error {
		return s.exec("REPLACE INTO z2(a, b, c) SELECT a, b, c FROM z1", "REPLACE INTO t3(a, b, c) SELECT a, b, c FROM z1")
	})
	s.step(n(n5)+" four-table joins", func() error {
		return s.tx(func() error {
			return s.repeat("SELECT count(*), max(z1.c) FROM t4 JOIN t3 ON t3.a = t4.b JOIN z2 ON z2.a = t3.b "+
				"JOIN z1 ON z1.c = z2.c WHERE t4.a BETWEEN ? AND ?", n5, between)
		})
	})
	big := sz * 7 / 5
	s.step(n(big)+" REPLACEs on an integer PK", func() error {
		return s.tx(func() error {
			if err := s.exec("CREATE TABLE t5(a INTEGER PRIMARY KEY, b TEXT NOT NULL)"); err != nil {
				return err
			}
			return s.repeat("REPLACE INTO t5 VALUES(?, ?)", big, func(i int) []any {
				return []any{rng.Intn(big/3) + 1, numberName(i)}
			})
		})
	})
	s.step(n(big)+" point SELECTs on an integer PK (autocommit)", func() error {
		return s.repeat("SELECT b FROM t5 WHERE a = ?", big, func(int) []any { return []any{rng.Intn(big/3) + 1} })
	})
	s.step(n(big)+" REPLACEs on a TEXT PK (WITHOUT ROWID)", func() error {
		return s.tx(func() error {
			if err := s.exec("CREATE TABLE t6(a TEXT PRIMARY KEY, b INTEGER NOT NULL) WITHOUT ROWID"); err != nil {
				return err
			}
			return s.repeat("REPLACE INTO t6 VALUES(?, ?)", big, func(i int) []any {
				return []any{numberName(rng.Intn(big/3) + 1), i}
			})
		})
	})
	s.step(n(big)+" point SELECTs on a TEXT PK (autocommit)", func() error {
		return s.repeat("SELECT b FROM t6 WHERE a = ?", big, func(int) []any { return []any{numberName(rng.Intn(big/3) + 1)} })
	})
	s.step("SELECT DISTINCT", func() error {
		return s.exec("SELECT DISTINCT b FROM t5", "SELECT DISTINCT b FROM t6")
	})
	s.step("PRAGMA integrity_check", func() error { return s.check() })
	s.step("ANALYZE", func() error { return s.exec("ANALYZE") })
}

// check runs PRAGMA integrity_check and fails unless it answers ok.
func (s *stepper) check() error {
	var res string
	if err := s.conn.QueryRowContext(s.ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity_check: %s", res)
	}
	return nil
}
