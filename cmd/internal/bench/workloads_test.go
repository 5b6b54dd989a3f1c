package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain makes the test binary a writer process of the
// several-processes workload when started as one (see testWorker).
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "bench-worker" {
		d, err := time.ParseDuration(os.Args[4])
		if err == nil {
			err = RunWorker(context.Background(), os.Args[2], os.Args[3], d, os.Stdin, os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testWorker(db, syncMode string, d time.Duration) []string {
	return []string{os.Args[0], "bench-worker", db, syncMode, d.String()}
}

// TestStandardWorkloads runs every workload, small, on a plain directory
// and checks each reports its rows with real figures and leaves the
// databases it claims to have written.
func TestStandardWorkloads(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Duration: 100 * time.Millisecond, ReadDBMB: 1, Writers: 2, BatchRows: 10, SmallDBs: 7, MixedSize: 1, BigRows: 50, Worker: testWorker}
	settled := 0
	cfg.Settle = func() error { settled++; return nil }
	seen := map[string]bool{}
	for _, w := range Standard(cfg) {
		rs, err := w.Run(context.Background(), dir, cfg)
		if err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		if len(rs) == 0 {
			t.Fatalf("%s: no results", w.Name)
		}
		for _, r := range rs {
			if seen[r.Workload] {
				t.Errorf("row %q reported twice", r.Workload)
			}
			seen[r.Workload] = true
			if !strings.HasPrefix(r.Workload, w.Name) {
				t.Errorf("row %q does not start with its workload's name %q (--only selects by it)", r.Workload, w.Name)
			}
			if !(r.Value > 0) || !(r.Seconds > 0) {
				t.Errorf("%s: value %v, seconds %v", r.Workload, r.Value, r.Seconds)
			}
			if r.LowerIsBetter != (r.Unit == "s") {
				t.Errorf("%s: unit %s, lower is better %v", r.Workload, r.Unit, r.LowerIsBetter)
			}
			if r.Unit != "s" && r.Ops == 0 {
				t.Errorf("%s: rate with no operations", r.Workload)
			}
		}
	}
	if settled == 0 {
		t.Errorf("no workload settled the target after its setup")
	}
	for _, want := range []string{"processes writing one WAL db", "DELETE journal, synchronous=FULL", "mixed (speedtest1-like, size 1), WAL", "mixed (speedtest1-like, size 1), DELETE journal", "small dbs", "VACUUM", "total"} {
		found := false
		for name := range seen {
			found = found || strings.Contains(name, want)
		}
		if !found {
			t.Errorf("no row mentions %q; rows: %v", want, seen)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "small")); !os.IsNotExist(err) {
		t.Errorf("the small-databases workload left its databases behind (%v)", err)
	}
	if got := countRows(t, filepath.Join(dir, "procs-2.db")); got == 0 {
		t.Errorf("the writer processes committed nothing")
	}
}

// TestMixedSteps checks the mixed workload times each of its steps and
// that its database passes integrity_check in both journal modes.
func TestMixedSteps(t *testing.T) {
	for _, journal := range []string{"WAL", "DELETE"} {
		rs, err := mixed(context.Background(), t.TempDir(), journal, "m", Config{MixedSize: 1})
		if err != nil {
			t.Fatalf("%s: %v", journal, err)
		}
		if got := len(rs[0].Steps); got < 25 {
			t.Errorf("%s: %d steps, want at least 25", journal, got)
		}
		var sum float64
		for _, s := range rs[0].Steps {
			sum += s.Seconds
		}
		if diff := sum - rs[0].Value; diff > 1e-6 || diff < -1e-6 {
			t.Errorf("%s: total %v is not the sum of the steps %v", journal, rs[0].Value, sum)
		}
	}
}

// TestCreateSmall checks each small database holds the rows it should and
// takes the probe write that tells a mount is usable.
func TestCreateSmall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dbs")
	if _, err := CreateSmall(context.Background(), dir, 3); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := countRows(t, filepath.Join(dir, SmallName(i))); got != 5 {
			t.Errorf("small db %d holds %d rows, want 5", i, got)
		}
	}
	if err := WriteSmall(filepath.Join(dir, SmallName(2))); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, filepath.Join(dir, SmallName(2))); got != 6 {
		t.Errorf("after the probe write: %d rows, want 6", got)
	}
	if err := WriteSmall(filepath.Join(dir, SmallName(3))); err == nil {
		t.Errorf("the probe write created a database that did not exist")
	}
}

func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("select count(*) from t").Scan(&n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func TestNumberName(t *testing.T) {
	for n, want := range map[int]string{0: "zero", 7: "seven", 40: "forty", 42: "forty-two", 100: "one hundred",
		1001: "one thousand one", 123456: "one hundred twenty-three thousand four hundred fifty-six"} {
		if got := numberName(n); got != want {
			t.Errorf("numberName(%d) = %q, want %q", n, got, want)
		}
	}
	seen := map[string]int{}
	for n := range 200000 {
		name := numberName(n)
		if m, dup := seen[name]; dup {
			t.Fatalf("numberName(%d) = numberName(%d) = %q", n, m, name)
		}
		seen[name] = n
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 14000: "14,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
