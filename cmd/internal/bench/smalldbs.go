package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// smallSchema is the table of every small database.
const smallSchema = "create table t(id integer primary key, v text)"

// SmallName is the file name of the i-th small database.
func SmallName(i int) string { return fmt.Sprintf("small-%05d.db", i) }

// CreateSmall creates n small databases in dir, each as an application
// that keeps one database per tenant creates one: open (WAL,
// synchronous=NORMAL), create a table, five 1-row transactions, close. dir
// is emptied first.
func CreateSmall(ctx context.Context, dir string, n int) (time.Duration, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if err := createOneSmall(filepath.Join(dir, SmallName(i))); err != nil {
			return 0, fmt.Errorf("small db %d: %w", i, err)
		}
	}
	return time.Since(start), ctx.Err()
}

func createOneSmall(path string) error {
	db, err := open(path, "WAL", "NORMAL")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(smallSchema); err != nil {
		db.Close()
		return err
	}
	for j := range 5 {
		if _, err := db.Exec("insert into t(v) values (?)", fmt.Sprintf("row %d of a small database", j)); err != nil {
			db.Close()
			return err
		}
	}
	return db.Close()
}

// createSmall is the small-databases workload. It removes the databases
// afterwards (untimed).
func createSmall(ctx context.Context, dir string, n int) (int, time.Duration, error) {
	elapsed, err := CreateSmall(ctx, dir, n)
	if err != nil {
		return 0, 0, err
	}
	return n, elapsed, os.RemoveAll(dir)
}

// WriteSmall commits one row to an existing small database: the probe that
// a mount is usable.
func WriteSmall(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := open(path, "WAL", "NORMAL")
	if err != nil {
		return err
	}
	if _, err := db.Exec("insert into t(v) values ('probe')"); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}
