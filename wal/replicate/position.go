package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

// Pos is a replication position: the last TXID and the database checksum
// after it.
type Pos struct {
	TXID     uint64       `json:"txid"`
	Checksum ltx.Checksum `json:"checksum"`
}

// levels is every level a replica may hold, snapshots first.
var levels = []int{s3backend.LevelSnapshot, 3, 2, 1, s3backend.LevelL0}

// replicaPos returns the newest position in the store for db: the file with
// the highest MaxTXID and the post-apply checksum from its trailer.
func replicaPos(ctx context.Context, st s3backend.Store, db string) (Pos, error) {
	var newest s3backend.FileInfo
	for _, lvl := range levels {
		infos, err := st.List(ctx, db, lvl)
		if err != nil {
			return Pos{}, fmt.Errorf("list level %d of %s: %w", lvl, db, err)
		}
		for _, info := range infos {
			if info.MaxTXID > newest.MaxTXID {
				newest = info
			}
		}
	}
	if newest.MaxTXID == 0 {
		return Pos{}, nil
	}
	sum, err := readPostApply(ctx, st, newest)
	if err != nil {
		return Pos{}, err
	}
	return Pos{TXID: newest.MaxTXID, Checksum: sum}, nil
}

// readPostApply reads the post-apply checksum from an object's trailer
// (restore.ReadPostApply). An object too small to hold one, or gone, is an
// inconsistency.
func readPostApply(ctx context.Context, st s3backend.Store, info s3backend.FileInfo) (ltx.Checksum, error) {
	sum, err := restore.ReadPostApply(ctx, st, info)
	switch {
	case err == nil:
		return sum, nil
	case errors.Is(err, restore.ErrCorrupt):
		return 0, damaged(err)
	}
	return 0, classify(err)
}

// statePath is where the last uploaded position of db is kept.
func statePath(stateDir, db string) string {
	return filepath.Join(stateDir, "pos", filepath.FromSlash(db)+".json")
}

func loadPos(stateDir, db string) (Pos, error) {
	b, err := os.ReadFile(statePath(stateDir, db))
	if errors.Is(err, os.ErrNotExist) {
		return Pos{}, nil
	} else if err != nil {
		return Pos{}, fmt.Errorf("read position of %s: %w", db, err)
	}
	var p Pos
	if err := json.Unmarshal(b, &p); err != nil {
		return Pos{}, fmt.Errorf("parse position of %s: %w (delete %s to start a new snapshot)", db, err, statePath(stateDir, db))
	}
	return p, nil
}

func savePos(stateDir, db string, p Pos) error {
	path := statePath(stateDir, db)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save position of %s: %w", db, err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save position of %s: %w", db, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save position of %s: %w", db, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save position of %s: %w", db, err)
	}
	return nil
}

// SavedPos returns the last position a mount of dataDir uploaded for db
// (zero when it has none).
func SavedPos(dataDir, db string) (Pos, error) {
	return loadPos(filepath.Join(dataDir, StateDirName), db)
}
