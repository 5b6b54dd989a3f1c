package restore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"
	"github.com/walfs/walfs/s3backend"
)

// TestRestoreRealSQLite snapshots a database made by real SQLite (WAL mode,
// so its header bytes 18/19 are 2), ships a later state as a level-0 file of
// the pages that changed, stores both in the file store and restores each
// point with a full integrity check.
func TestRestoreRealSQLite(t *testing.T) {
	const pageSize = 4096
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	exec(t, src,
		"PRAGMA page_size=4096",
		"PRAGMA journal_mode=WAL",
		"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, blob BLOB)",
		"CREATE INDEX t_name ON t(name)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500) "+
			"INSERT INTO t SELECT i, 'row ' || i, randomblob(300) FROM n",
	)
	img1 := checkpointed(t, src)
	rows1 := dump(t, src)
	exec(t, src,
		"UPDATE t SET name = 'changed ' || id WHERE id % 7 = 0",
		"DELETE FROM t WHERE id BETWEEN 100 AND 180",
		"WITH RECURSIVE n(i) AS (SELECT 501 UNION ALL SELECT i+1 FROM n WHERE i < 900) "+
			"INSERT INTO t SELECT i, 'row ' || i, randomblob(500) FROM n",
	)
	img2 := checkpointed(t, src)
	rows2 := dump(t, src)
	if img1[18] != 2 || img1[19] != 2 {
		t.Fatalf("header bytes 18/19 = %d/%d, want 2/2 (WAL mode)", img1[18], img1[19])
	}

	st := s3backend.NewFileStore(filepath.Join(dir, "replica"))
	if err := st.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	putImage(t, st, nil, img1, pageSize, 1, 1, t0)
	putImage(t, st, img1, img2, pageSize, 2, 2, t0.Add(time.Minute))

	for _, tt := range []struct {
		txid uint64
		rows string
	}{{1, rows1}, {2, rows2}} {
		t.Run(fmt.Sprintf("TXID %d", tt.txid), func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "restored.db")
			res, err := Restore(context.Background(), st, "app.db", out, Options{
				Target: Target{TXID: tt.txid}, IntegrityCheck: IntegrityFull,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Verified {
				t.Error("not verified")
			}
			checkOnly(t, outDir, "restored.db") // no -wal, -shm, .tmp or download dir
			if got := dump(t, out); got != tt.rows {
				t.Errorf("restored rows differ from the source at TXID %d", tt.txid)
			}
			var check string
			if err := open(t, out).QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Errorf("integrity_check = %q, %v", check, err)
			}
		})
	}
}

// putImage stores the change from prev to img (every page for a snapshot)
// as one LTX file with real checksums. minTXID 1 goes to level 9.
func putImage(t *testing.T, st s3backend.Store, prev, img []byte, pageSize uint32, minTXID, maxTXID uint64, at time.Time) {
	t.Helper()
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: pageSize, Commit: uint32(len(img)) / pageSize,
		MinTXID: ltx.TXID(minTXID), MaxTXID: ltx.TXID(maxTXID), Timestamp: at.UnixMilli(),
	}
	level := s3backend.LevelSnapshot
	if minTXID > 1 {
		level = s3backend.LevelL0
		sum, err := ltx.ChecksumReader(bytes.NewReader(prev), int(pageSize))
		if err != nil {
			t.Fatal(err)
		}
		hdr.PreApplyChecksum = sum
	}
	var buf bytes.Buffer
	enc, _ := ltx.NewEncoder(&buf)
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	for pgno := uint32(1); pgno <= hdr.Commit; pgno++ {
		page := img[(pgno-1)*pageSize : pgno*pageSize]
		if level == s3backend.LevelSnapshot || int(pgno*pageSize) > len(prev) || !bytes.Equal(page, prev[(pgno-1)*pageSize:pgno*pageSize]) {
			if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, page); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum, err := ltx.ChecksumReader(bytes.NewReader(img), int(pageSize))
	if err != nil {
		t.Fatal(err)
	}
	enc.SetPostApplyChecksum(sum)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	info := s3backend.FileInfo{DB: "app.db", Level: level, MinTXID: minTXID, MaxTXID: maxTXID, CreatedAt: at}
	if _, err := st.Write(context.Background(), info, &buf, int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
}

// open opens a database with modernc.org/sqlite, closed with the test.
func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db := open(t, path)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkpointed checkpoints the WAL into the database file and returns it.
func checkpointed(t *testing.T, path string) []byte {
	t.Helper()
	exec(t, path, "PRAGMA wal_checkpoint(TRUNCATE)")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dump returns every row of t, in order, as text.
func dump(t *testing.T, path string) string {
	t.Helper()
	db := open(t, path)
	rows, err := db.Query("SELECT id, name, hex(blob) FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var id int
		var name, blob string
		if err := rows.Scan(&id, &name, &blob); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%d|%s|%s\n", id, name, blob)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
