package follow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

// lockWait bounds how long one update waits for readers before it is
// retried at the next poll (Status says why it waits).
const lockWait = 30 * time.Second

// update brings st to l: the files that extend its TXID when they exist
// (hinted, else listed), else a full restore.
func (f *Follower) update(ctx context.Context, st *dbState, l Latest) error {
	f.mu.Lock()
	cur := st.txid
	if l.TXID <= cur {
		st.behindSince, st.waiting = time.Time{}, ""
		f.mu.Unlock()
		return nil
	}
	if st.behindSince.IsZero() {
		st.behindSince = time.Now()
	}
	f.mu.Unlock()

	chain, reached := restore.Cover(filesOnly(l.Files), cur)
	listed := false
	for {
		if reached < l.TXID && !listed {
			files, err := listAll(ctx, f.opts.Store, st.rel, false)
			if err != nil {
				return f.failed(st, err)
			}
			chain, reached = restore.Cover(files, cur)
			listed = true
		}
		if reached <= cur {
			f.log.Info("followed database fell behind what the replica keeps: restoring it", "db", st.rel, "txid", cur, "replica_txid", l.TXID)
			return f.failed(st, f.reload(ctx, st, nil))
		}
		paths, err := f.download(ctx, chain)
		if errors.Is(err, s3backend.ErrNotFound) && !listed {
			// A hinted file was compacted away since: list instead.
			removeAll(paths)
			reached = 0
			continue
		}
		if err != nil {
			removeAll(paths)
			return f.failed(st, err)
		}
		defer removeAll(paths)
		return f.failed(st, f.applyChain(ctx, st, chain, paths))
	}
}

// applyChain applies the downloaded chain under SQLite's lock; a failure
// rebuilds the database before the lock is released.
func (f *Follower) applyChain(ctx context.Context, st *dbState, chain []s3backend.FileInfo, paths []string) error {
	unlock, err := f.lockDB(ctx, st)
	if err != nil {
		return err
	}
	if err := f.applyLocked(st, chain, paths); err != nil {
		f.log.Warn("update of followed database failed: restoring it", "db", st.rel, "err", err)
		return f.reload(ctx, st, unlock)
	}
	return unlock()
}

// failed records err (nil: success) as st's last error and returns it.
func (f *Follower) failed(st *dbState, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st.waiting = ""
	if err != nil {
		st.lastErr = err.Error()
	} else {
		st.lastErr = ""
		if l, ok := f.latest[st.rel]; !ok || st.txid >= l.TXID {
			st.behindSince = time.Time{}
		}
	}
	return err
}

func (f *Follower) lockDB(ctx context.Context, st *dbState) (func() error, error) {
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	return f.lock(lctx, st.rel, func(w bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		st.waiting = ""
		if w {
			st.waiting = "readers (an open read transaction holds the database)"
		}
	})
}

// filesOnly drops snapshots: an update extends a TXID with files of levels
// 0..3; a snapshot means a full restore.
func filesOnly(infos []s3backend.FileInfo) []s3backend.FileInfo {
	var out []s3backend.FileInfo
	for _, i := range infos {
		if i.Level != s3backend.LevelSnapshot {
			out = append(out, i)
		}
	}
	return out
}

// download fetches chain into temporary files and checks each one whole
// (CRC, page index, trailer) before anything is applied.
func (f *Follower) download(ctx context.Context, chain []s3backend.FileInfo) ([]string, error) {
	dir := filepath.Join(f.stateDir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var paths []string
	for _, info := range chain {
		p, err := f.fetch(ctx, dir, info)
		if err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func (f *Follower) fetch(ctx context.Context, dir string, info s3backend.FileInfo) (string, error) {
	rc, err := f.opts.Store.Open(ctx, info, 0)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", s3backend.Key(info), err)
	}
	defer rc.Close() // a download: nothing to lose
	tmp, err := os.CreateTemp(dir, "follow-*.ltx")
	if err != nil {
		return "", err
	}
	_, cerr := io.Copy(tmp, rc)
	if cerr == nil {
		_, cerr = tmp.Seek(0, io.SeekStart)
	}
	if cerr == nil {
		if verr := ltx.NewDecoder(tmp).Verify(); verr != nil {
			cerr = fmt.Errorf("%s is damaged: %w", s3backend.Key(info), verr)
		}
	}
	if err := errors.Join(cerr, tmp.Close()); err != nil {
		return "", errors.Join(fmt.Errorf("download %s: %w", s3backend.Key(info), err), os.Remove(tmp.Name()))
	}
	return tmp.Name(), nil
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p) //walfs:ignore-error a scratch download; tmp/ is emptied at start too
	}
}

// applyLocked applies the downloaded chain to st's file. The caller holds
// SQLite's EXCLUSIVE lock on it.
func (f *Follower) applyLocked(st *dbState, chain []s3backend.FileInfo, paths []string) (err error) {
	if err := f.mark(st.rel); err != nil {
		return err
	}
	file, err := os.OpenFile(f.path(st.rel), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, file.Close()) }()
	sf, err := newSumFile(file, st.pageSize, st.checksum)
	if err != nil {
		return err
	}
	txid := st.txid
	var commit time.Time
	for i, info := range chain {
		hdr, trailer, err := applyOne(sf, st.pageSize, info, paths[i], txid)
		if err != nil {
			return err
		}
		if !hdr.NoChecksum() && trailer.PostApplyChecksum != sf.Checksum() {
			return fmt.Errorf("after %s the database checksum is %s, the file says %s", s3backend.Key(info), sf.Checksum(), trailer.PostApplyChecksum)
		}
		txid, commit = info.MaxTXID, time.UnixMilli(hdr.Timestamp)
	}
	if err := file.Sync(); err != nil {
		return err
	}
	sum := sf.Checksum()
	if err := f.savePos(st.rel, position{TXID: txid, Checksum: sum}); err != nil {
		return err
	}
	f.mu.Lock()
	st.txid, st.checksum, st.pages, st.commit = txid, sum, uint32(sf.size/int64(st.pageSize)), commit
	st.applied++
	f.changesApplied(st)
	f.mu.Unlock()
	return f.unmark(st.rel)
}

// changesApplied is called under f.mu after st moved.
func (f *Follower) changesApplied(st *dbState) {
	if l, ok := f.latest[st.rel]; !ok || st.txid >= l.TXID {
		st.behindSince = time.Time{}
	}
}

// applyOne checks that the file at path extends the database at txid
// (its pre-apply checksum, when it starts right after txid and tracks one)
// and applies it.
func applyOne(sf *sumFile, pageSize uint32, info s3backend.FileInfo, path string, txid uint64) (ltx.Header, ltx.Trailer, error) {
	r, err := os.Open(path)
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	defer r.Close() // read only
	dec := ltx.NewDecoder(r)
	if err := dec.DecodeHeader(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("%s: %w", s3backend.Key(info), err)
	}
	hdr := dec.Header()
	if info.MinTXID == txid+1 && !hdr.NoChecksum() && !hdr.IsSnapshot() && hdr.PreApplyChecksum != sf.Checksum() {
		return hdr, ltx.Trailer{}, fmt.Errorf("%s follows a database with checksum %s; this one has %s", s3backend.Key(info), hdr.PreApplyChecksum, sf.Checksum())
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	return restore.ApplyFile(r, sf, pageSize, info)
}

// restoreNew restores db, which the data dir lacks or cannot use, into
// place (nobody reads it yet: rename is fine).
func (f *Follower) restoreNew(ctx context.Context, db string) (*dbState, error) {
	path := f.path(db)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := f.mark(db); err != nil {
		return nil, err
	}
	res, err := restore.Restore(ctx, f.opts.Store, db, path, restore.Options{Force: true, Logger: f.log, IntegrityCheck: f.opts.Integrity})
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", dbLabel(db), err)
	}
	// The replica keeps no owner or mode: a follower's databases are the
	// mount user's and readable by everyone the mount lets in.
	if err := os.Chmod(path, 0o644); err != nil {
		return nil, err
	}
	st := stateOf(db, res)
	if err := f.savePos(db, position{TXID: st.txid, Checksum: st.checksum}); err != nil {
		return nil, err
	}
	if err := f.unmark(db); err != nil {
		return nil, err
	}
	f.log.Info("restored followed database", "db", db, "txid", st.txid)
	return st, nil
}

func stateOf(db string, res *restore.Result) *dbState {
	return &dbState{
		rel: db, txid: res.Plan.TXID, checksum: ltx.Checksum(res.Checksum), pageSize: res.Plan.PageSize,
		pages: uint32(res.Plan.DBSize / int64(res.Plan.PageSize)), commit: res.Plan.Timestamp,
	}
}

// reload rebuilds st's database by a full restore into a scratch file and
// copies it in place under SQLite's lock (unlock non-nil: the caller holds
// it already), so readers keep their open files and see the new state.
func (f *Follower) reload(ctx context.Context, st *dbState, unlock func() error) (err error) {
	if unlock == nil {
		tmp, res, err := f.restoreScratch(ctx, st.rel)
		if err != nil {
			return err
		}
		defer os.Remove(tmp) //walfs:ignore-error scratch; tmp/ is emptied at start too
		if unlock, err = f.lockDB(ctx, st); err != nil {
			return err
		}
		return errors.Join(f.install(st, tmp, res), unlock())
	}
	defer func() { err = errors.Join(err, unlock()) }()
	tmp, res, err := f.restoreScratch(ctx, st.rel)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) //walfs:ignore-error scratch; tmp/ is emptied at start too
	return f.install(st, tmp, res)
}

func (f *Follower) restoreScratch(ctx context.Context, db string) (string, *restore.Result, error) {
	dir := filepath.Join(f.stateDir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	tmp := filepath.Join(dir, fmt.Sprintf("follow-%d.db", time.Now().UnixNano()))
	res, err := restore.Restore(ctx, f.opts.Store, db, tmp, restore.Options{Force: true, Logger: f.log, IntegrityCheck: f.opts.Integrity})
	if err != nil {
		return "", nil, fmt.Errorf("restore %s: %w", dbLabel(db), err)
	}
	return tmp, res, nil
}

// install copies the restored file tmp over st's database in place. The
// caller holds SQLite's lock.
func (f *Follower) install(st *dbState, tmp string, res *restore.Result) (err error) {
	if err := f.mark(st.rel); err != nil {
		return err
	}
	src, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer src.Close() // read only
	dst, err := os.OpenFile(f.path(st.rel), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dst.Close()) }()
	n, err := io.Copy(io.NewOffsetWriter(dst, 0), src)
	if err != nil {
		return err
	}
	if err := dst.Truncate(n); err != nil {
		return err
	}
	if err := dst.Sync(); err != nil {
		return err
	}
	ns := stateOf(st.rel, res)
	if err := f.savePos(st.rel, position{TXID: ns.txid, Checksum: ns.checksum}); err != nil {
		return err
	}
	f.mu.Lock()
	st.txid, st.checksum, st.pageSize, st.pages, st.commit = ns.txid, ns.checksum, ns.pageSize, ns.pages, ns.commit
	st.reloads++
	f.changesApplied(st)
	f.mu.Unlock()
	f.log.Info("followed database restored in place", "db", st.rel, "txid", ns.txid)
	return f.unmark(st.rel)
}

// remove deletes a database the replica no longer holds, once its readers
// let go (those with it open keep reading the removed file).
func (f *Follower) remove(ctx context.Context, db string) error {
	f.mu.RLock()
	st := f.dbs[db]
	f.mu.RUnlock()
	if st != nil {
		unlock, err := f.lockDB(ctx, st)
		if err != nil {
			return err
		}
		defer unlock() //walfs:ignore-error the file is gone; closing the lock's descriptor cannot lose anything
	}
	var errs []error
	for _, s := range []string{"", "-journal", "-wal", "-shm"} {
		if err := os.Remove(f.path(db) + s); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, f.forget(db))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove %s: %w", db, err)
	}
	f.mu.Lock()
	delete(f.dbs, db)
	f.mu.Unlock()
	f.log.Info("removed a database the replica no longer holds", "db", db)
	return nil
}
