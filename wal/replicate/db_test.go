package replicate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The size of a database comes from its header; a file that cannot be read
// is an error, not an empty database (a rollback-journal commit would
// otherwise be skipped as "nothing to spool").
func TestReadDBHeader(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.db")
	if err := os.WriteFile(short, []byte("SQLite format 3\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		n       int
		size    int64
		wantErr bool
	}{
		{"missing", filepath.Join(dir, "none.db"), 0, 0, false},
		{"shorter than a header", short, 16, 16, false},
		{"unreadable (a directory)", dir, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h dbHeader
			f, err := openRead(tc.path)
			if err == nil {
				h, err = readDBHeader(f)
				f.Close()
			} else if errors.Is(err, os.ErrNotExist) {
				err = nil // shape and journalCommitAt: no file, an empty database
			}
			if n, size := h.n, h.size; (err != nil) != tc.wantErr || n != tc.n || size != tc.size {
				t.Errorf("readDBHeader: n %d, size %d, err %v; want n %d, size %d, error %v", n, size, err, tc.n, tc.size, tc.wantErr)
			}
		})
	}
}
