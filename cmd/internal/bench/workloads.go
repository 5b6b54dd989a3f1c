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

// Result is one workload's figure on one target.
type Result struct {
	Workload string  `json:"workload"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Ops      int     `json:"ops"`
	Seconds  float64 `json:"seconds"`
}

// Workload is a named benchmark body. dir is where its database lives.
type Workload struct {
	Name string
	Unit string
	Run  func(ctx context.Context, dir string, cfg Config) (ops int, elapsed time.Duration, err error)
}

// Config sizes the workloads.
type Config struct {
	Duration  time.Duration // how long each timed workload runs
	ReadDBMB  int           // size of the point-read database
	Writers   int           // concurrent writer connections
	BatchRows int           // rows per transaction in the batch workload
	Only      string        // run only workloads whose name contains this; "" runs all
	// Settle, when set, waits until the target has no background work left
	// (a walfs mount: until the replica holds every commit). Workloads call
	// it after their setup, so that replicating the setup (a 200 MB
	// database for the point reads) does not compete with what is timed.
	Settle func() error
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
func Standard() []Workload {
	return []Workload{
		{"1-row txns, synchronous=NORMAL", "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "NORMAL", 1, c)
		}},
		{"1-row txns, synchronous=FULL", "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "FULL", 1, c)
		}},
		{fmt.Sprintf("%d-row txns", 1000), "rows/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return batchRows(ctx, dir, c.BatchRows, c)
		}},
		{"random point reads (warm)", "reads/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return pointReads(ctx, dir, c.ReadDBMB, c)
		}},
		{"concurrent writers", "tx/s", func(ctx context.Context, dir string, c Config) (int, time.Duration, error) {
			return singleRow(ctx, dir, "NORMAL", c.Writers, c)
		}},
	}
}

func open(path, syncMode string) (*sql.DB, error) {
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=busy_timeout(10000)", path, syncMode)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	return db, db.Ping()
}

// create makes a database with schema, closes it and opens it again, so the
// measured connections find an existing database in WAL mode, as an
// application does at every start but its first. (On a walfs mount with
// passthrough capture only such connections write the database file without
// a FUSE round trip per page; see fusefs/dbfile.go.)
func create(path, syncMode, schema string) (*sql.DB, error) {
	db, err := open(path, syncMode)
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
	return open(path, syncMode)
}

func fresh(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return "", err
		}
	}
	return path, nil
}

// singleRow commits one-row transactions from writers connections.
func singleRow(ctx context.Context, dir, syncMode string, writers int, c Config) (int, time.Duration, error) {
	d := c.Duration
	path, err := fresh(dir, fmt.Sprintf("single-%s-%d.db", syncMode, writers))
	if err != nil {
		return 0, 0, err
	}
	db, err := create(path, syncMode, "create table t(id integer primary key, v blob)")
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
	db, err := create(path, "NORMAL", "create table t(id integer primary key, k integer, v blob)")
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
	db, err := open(path, "NORMAL")
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
	db, err := open(path, "NORMAL")
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
