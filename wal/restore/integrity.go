package restore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Integrity check modes (Options.IntegrityCheck).
const (
	IntegrityNone  = "none"
	IntegrityQuick = "quick"
	IntegrityFull  = "full"
)

// maxIntegrityMessages bounds the problems quoted in an ErrIntegrity error.
const maxIntegrityMessages = 3

// integrityCheck runs PRAGMA quick_check or integrity_check on the database
// file at path. It opens the file read-only and immutable: SQLite then
// neither takes locks nor creates -wal/-shm files, even when the header says
// WAL mode (bytes 18/19 = 2, as a database captured in WAL mode has).
func integrityCheck(ctx context.Context, path, mode string) error {
	pragma := "quick_check"
	if mode == IntegrityFull {
		pragma = "integrity_check"
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "mode=ro&immutable=1"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("integrity check: open: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	rows, err := db.QueryContext(ctx, "PRAGMA "+pragma)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrIntegrity, pragma, err)
	}
	defer rows.Close()
	var problems []string
	total := 0
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrIntegrity, pragma, err)
		}
		if msg == "ok" {
			continue
		}
		total++
		if len(problems) < maxIntegrityMessages {
			problems = append(problems, msg)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrIntegrity, pragma, err)
	}
	if total > 0 {
		more := ""
		if total > len(problems) {
			more = fmt.Sprintf(" (and %d more)", total-len(problems))
		}
		return fmt.Errorf("%w: %s found %d problems: %s%s", ErrIntegrity, pragma, total, strings.Join(problems, "; "), more)
	}
	return nil
}
