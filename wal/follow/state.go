package follow

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/superfly/ltx"
)

// position is what a followed database holds: the replica's TXID and the
// database checksum there. It is written where the primary keeps its last
// uploaded position (.walfs/pos/<db>.json, same JSON as
// wal/replicate.Pos), so a promoted follower's replicator finds the
// database equal to the replica and continues its TXID sequence without a
// new snapshot.
type position struct {
	TXID     uint64       `json:"txid"`
	Checksum ltx.Checksum `json:"checksum"`
}

func (f *Follower) posPath(db string) string {
	return filepath.Join(f.stateDir, "pos", filepath.FromSlash(db)+".json")
}

// markerPath is the file that exists while db is being changed.
func (f *Follower) markerPath(db string) string {
	return filepath.Join(f.stateDir, "follow", filepath.FromSlash(db)+".applying")
}

func (f *Follower) loadPos(db string) (position, bool, error) {
	b, err := os.ReadFile(f.posPath(db))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, false, nil
	} else if err != nil {
		return position{}, false, fmt.Errorf("read position of %s: %w", db, err)
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, false, nil // rebuilt by a restore
	}
	return p, true, nil
}

func (f *Follower) savePos(db string, p position) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeSynced(f.posPath(db), b)
}

// mark records that db is about to change; unmark that it changed whole.
func (f *Follower) mark(db string) error { return writeSynced(f.markerPath(db), nil) }

func (f *Follower) unmark(db string) error {
	if err := os.Remove(f.markerPath(db)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove update marker of %s: %w", db, err)
	}
	return nil
}

func (f *Follower) marked(db string) bool {
	_, err := os.Lstat(f.markerPath(db))
	return err == nil
}

// forget removes what the follower kept about db.
func (f *Follower) forget(db string) error {
	var errs []error
	for _, p := range []string{f.posPath(db), f.markerPath(db)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeSynced replaces path with b through a synced temporary file.
func writeSynced(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
