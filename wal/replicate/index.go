package replicate

import (
	"cmp"
	"context"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// indexStore wraps the replica store so that walfs knows what the replica
// holds without listing it again: every Write and Delete that goes through it
// updates an in-memory index of each database's files per level. The first
// List of a level (at start, when resume looks for the replica position)
// seeds that level; later listings leave the index alone, so an idle
// database needs no requests to learn that nothing changed.
//
// It also tees uploads of levels 0..2 into the local write cache, so that
// compacting them costs no downloads, and tells the maintenance metrics which
// writes were uploads and which were maintenance.
type indexStore struct {
	s3backend.Store
	cache *writeCache
	now   func() time.Time

	mu  sync.Mutex
	dbs map[string]*fileIndex
}

// indexedLevels are the levels the index tracks, snapshots first.
var indexedLevels = []int{s3backend.LevelSnapshot, 3, 2, 1, s3backend.LevelL0}

// fileIndex is what the replica holds for one database.
type fileIndex struct {
	seeded  [s3backend.LevelSnapshot + 1]bool
	levels  [s3backend.LevelSnapshot + 1][]s3backend.FileInfo // sorted by MinTXID, MaxTXID
	storeEv storeEvents
}

// storeEvents counts what happened to one database's replica since start.
type storeEvents struct {
	uploads     uint64 // level-0 files and spooled snapshots written by the uploader
	uploadBytes uint64
	uploadErrs  uint64
	written     [s3backend.LevelSnapshot + 1]uint64 // maintenance writes by level
	deleted     uint64
	lastErr     error
	lastErrAt   time.Time
}

func newIndexStore(inner s3backend.Store, cache *writeCache, now func() time.Time) *indexStore {
	return &indexStore{Store: inner, cache: cache, now: now, dbs: map[string]*fileIndex{}}
}

// Unwrap returns the wrapped store, for code that needs an optional
// interface of the concrete store.
func (s *indexStore) Unwrap() s3backend.Store { return s.Store }

// maintenanceKey marks the context of writes made by maintenance.
type maintenanceKey struct{}

func maintenanceCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, maintenanceKey{}, true)
}

func (s *indexStore) db(db string) *fileIndex {
	fi := s.dbs[db]
	if fi == nil {
		fi = &fileIndex{}
		s.dbs[db] = fi
	}
	return fi
}

// List forwards the listing and seeds the level if it is not seeded yet.
// Files written while the listing ran are kept (union).
func (s *indexStore) List(ctx context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	infos, err := s.Store.List(ctx, db, level)
	s.mu.Lock()
	defer s.mu.Unlock()
	fi := s.db(db)
	if err != nil {
		fi.failed(err, s.now())
		return infos, err
	}
	if level >= 0 && level < len(fi.seeded) && !fi.seeded[level] {
		for _, info := range infos {
			fi.add(info)
		}
		fi.seeded[level] = true
	}
	return infos, nil
}

// Write forwards the upload and records the new file.
func (s *indexStore) Write(ctx context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	tee := s.cache.begin(info)
	if tee != nil {
		r = io.TeeReader(r, tee)
	}
	out, err := s.Store.Write(ctx, info, r, size)
	tee.end(err == nil)
	maint := ctx.Value(maintenanceKey{}) != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	fi := s.db(info.DB)
	if err != nil {
		fi.failed(err, s.now())
		if !maint {
			fi.storeEv.uploadErrs++
		}
		return out, err
	}
	fi.add(out)
	if maint {
		fi.storeEv.written[out.Level]++
	} else {
		fi.storeEv.uploads++
		fi.storeEv.uploadBytes += uint64(out.Size)
	}
	return out, nil
}

// Delete forwards the deletion and forgets the files, even when it fails:
// a file that may be gone must never be chosen as a compaction input again,
// while a file that survived is only garbage the next start's listing finds.
func (s *indexStore) Delete(ctx context.Context, infos []s3backend.FileInfo) error {
	err := s.Store.Delete(ctx, infos)
	s.mu.Lock()
	for _, info := range infos {
		fi := s.db(info.DB)
		if fi.remove(info) && err == nil {
			fi.storeEv.deleted++
		}
		if err != nil {
			fi.failed(err, s.now())
		}
	}
	s.mu.Unlock()
	s.cache.drop(infos...)
	return err
}

// files returns a copy of what the index holds for db at level.
func (s *indexStore) files(db string, level int) []s3backend.FileInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.db(db).levels[level])
}

// all returns a copy of every file the index holds for db, snapshots first.
func (s *indexStore) all(db string) (snaps, files []s3backend.FileInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi := s.db(db)
	snaps = slices.Clone(fi.levels[s3backend.LevelSnapshot])
	for level := s3backend.LevelL0; level <= s3backend.MaxCompactionLevel; level++ {
		files = append(files, fi.levels[level]...)
	}
	return snaps, files
}

// unseeded returns the levels of db that no listing has seeded yet.
func (s *indexStore) unseeded(db string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, level := range indexedLevels {
		if !s.db(db).seeded[level] {
			out = append(out, level)
		}
	}
	return out
}

// events returns what happened to db's replica since start.
func (s *indexStore) events(db string) storeEvents {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db(db).storeEv
}

func (fi *fileIndex) failed(err error, now time.Time) {
	fi.storeEv.lastErr, fi.storeEv.lastErrAt = err, now
}

// add inserts or replaces info in its level, keeping the order List uses.
func (fi *fileIndex) add(info s3backend.FileInfo) {
	if info.Level < 0 || info.Level >= len(fi.levels) {
		return
	}
	l := fi.levels[info.Level]
	i, found := slices.BinarySearchFunc(l, info, compareRange)
	if found {
		l[i] = info
		return
	}
	fi.levels[info.Level] = slices.Insert(l, i, info)
}

// remove drops info from its level and reports whether it was there.
func (fi *fileIndex) remove(info s3backend.FileInfo) bool {
	if info.Level < 0 || info.Level >= len(fi.levels) {
		return false
	}
	l := fi.levels[info.Level]
	i, found := slices.BinarySearchFunc(l, info, compareRange)
	if found {
		fi.levels[info.Level] = slices.Delete(l, i, i+1)
	}
	return found
}

// compareRange orders files like List: by MinTXID, then MaxTXID.
func compareRange(a, b s3backend.FileInfo) int {
	return cmp.Or(cmp.Compare(a.MinTXID, b.MinTXID), cmp.Compare(a.MaxTXID, b.MaxTXID))
}
