package replicate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// Scheduled snapshots are built from the replica, not from the local
// database: the newest snapshot and the fewest files after it are applied to
// a temporary image, which is written out as a level-9 snapshot of the latest
// TXID the replica holds (named 1-<that TXID>). That needs no lock on the
// database and takes no new TXID, so the lineage continues unbroken, and the
// result is checked against the last file's post-apply checksum before it is
// uploaded.

// snapshotIfDue writes a snapshot when the newest one is SnapshotInterval
// old, or when the level-0 bytes after it exceed SnapshotFactor times its
// size — and only if transactions followed it, so an idle database costs
// nothing.
func (dm *dbMaint) snapshotIfDue(ctx context.Context, now time.Time) error {
	snaps, files := dm.m.store.all(dm.db)
	if reason := snapshotDue(dm.m.opts, snapshotsOf(snaps), files, now); reason != "" {
		return dm.writeSnapshot(ctx, reason)
	}
	return nil
}

// snapshotDue returns why a snapshot is due, or "" when none is.
func snapshotDue(o MaintenanceOptions, snaps, files []s3backend.FileInfo, now time.Time) string {
	if len(snaps) == 0 {
		return "" // walfs writes the first snapshot itself; a replica without one is not ours to fix
	}
	newest := snaps[len(snaps)-1]
	if latestTXID(snaps, files) <= newest.MaxTXID {
		return ""
	}
	if o.SnapshotInterval > 0 && !now.Before(newest.CreatedAt.Add(o.SnapshotInterval)) {
		return "interval"
	}
	if o.SnapshotFactor > 0 && newest.Size > 0 {
		var l0 int64
		for _, f := range files {
			if f.Level == s3backend.LevelL0 && f.MinTXID > newest.MaxTXID {
				l0 += f.Size
			}
		}
		if float64(l0) > o.SnapshotFactor*float64(newest.Size) {
			return "size"
		}
	}
	return ""
}

// writeSnapshot builds and uploads a snapshot of the latest TXID.
func (dm *dbMaint) writeSnapshot(ctx context.Context, reason string) (err error) {
	level9, files := dm.m.store.all(dm.db)
	snaps := snapshotsOf(level9)
	if len(snaps) == 0 {
		return nil
	}
	base := snaps[len(snaps)-1]
	latest := latestTXID(snaps, files)
	rest, ok := chainTo(files, base.MaxTXID, latest)
	if !ok {
		return inconsistent(fmt.Errorf("snapshot %s: no chain of files from the snapshot at TXID %d to TXID %d", dm.db, base.MaxTXID, latest))
	}
	chain := append([]s3backend.FileInfo{base}, rest...)
	in, err := dm.fetch(ctx, chain)
	defer func() { err = errors.Join(err, in.remove()) }()
	if err != nil {
		return err
	}
	img, err := os.CreateTemp(dm.m.tmpDir, "snapshot-*.db")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", dm.db, err)
	}
	defer func() { err = errors.Join(err, removeScratch(img)) }()
	last, lastTrailer, err := applyChain(img, in.paths, chain)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", dm.db, err)
	}
	out, err := os.CreateTemp(dm.m.tmpDir, "snapshot-*.ltx")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", dm.db, err)
	}
	defer func() { err = errors.Join(err, removeScratch(out)) }()
	bw := bufio.NewWriterSize(out, 256<<10)
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: last.PageSize, Commit: last.Commit,
		MinTXID: 1, MaxTXID: ltx.TXID(latest), Timestamp: last.Timestamp,
	}
	var sum ltx.Checksum
	err = encodeLTX(bw, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
		s, err := encodeImage(enc, img, hdr.PageSize, hdr.Commit)
		sum = s
		return s, err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", dm.db, err)
	}
	if !last.NoChecksum() && sum != lastTrailer.PostApplyChecksum {
		return inconsistent(fmt.Errorf("snapshot %s: rebuilt database at TXID %d has checksum %s, the replica says %s",
			dm.db, latest, sum, lastTrailer.PostApplyChecksum))
	}
	info := s3backend.FileInfo{DB: dm.db, Level: s3backend.LevelSnapshot, MinTXID: 1, MaxTXID: latest, CreatedAt: time.UnixMilli(last.Timestamp)}
	if err := dm.put(ctx, info, out); err != nil {
		return err
	}
	dm.mu.Lock()
	dm.snapshots++
	dm.mu.Unlock()
	dm.log.Info("snapshot written", "reason", reason, "txid", latest, "pages", hdr.Commit, "from_files", len(chain), "downloaded", in.downloaded)
	return nil
}

// applyChain applies LTX files in order to img, as a restore does: pages at
// (pgno-1)*pageSize, truncating to each file's commit size, checking each
// file's CRC and that pre-apply checksums follow the post-apply checksums
// before them. It returns the last file's header and trailer. infos name
// the files in errors; a damaged file or a broken chain is an inconsistency.
func applyChain(img *os.File, paths []string, infos []s3backend.FileInfo) (ltx.Header, ltx.Trailer, error) {
	var last ltx.Header
	var lastTrailer ltx.Trailer
	posts := map[ltx.TXID]ltx.Checksum{}
	var buf []byte
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return last, lastTrailer, err
		}
		dec := ltx.NewDecoder(bufio.NewReaderSize(f, 64<<10))
		dec.SetRetainPageIndex(false)
		hdr, trailer, err := applyLTXFile(dec, img, &buf)
		f.Close() //walfs:ignore-error read only: a close error loses nothing
		if err != nil {
			return last, lastTrailer, fmt.Errorf("apply %s (file %d of %d): %w", s3backend.Key(infos[i]), i+1, len(paths), err)
		}
		if i > 0 && hdr.PageSize != last.PageSize {
			return last, lastTrailer, inconsistent(fmt.Errorf("page size changes from %d to %d at TXID %d", last.PageSize, hdr.PageSize, hdr.MinTXID))
		}
		if prev, ok := posts[hdr.MinTXID-1]; ok && !hdr.NoChecksum() && !hdr.IsSnapshot() && prev != hdr.PreApplyChecksum {
			return last, lastTrailer, inconsistent(fmt.Errorf("checksum chain breaks at %s: pre-apply %s, post-apply before it %s", s3backend.Key(infos[i]), hdr.PreApplyChecksum, prev))
		}
		if !hdr.NoChecksum() {
			posts[hdr.MaxTXID] = trailer.PostApplyChecksum
		}
		last, lastTrailer = hdr, trailer
	}
	return last, lastTrailer, nil
}

// applyLTXFile applies one file to img. Decoding errors (a damaged object)
// are inconsistencies; errors writing img are not.
func applyLTXFile(dec *ltx.Decoder, img *os.File, buf *[]byte) (ltx.Header, ltx.Trailer, error) {
	if err := dec.DecodeHeader(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, damaged(err)
	}
	hdr := dec.Header()
	if len(*buf) != int(hdr.PageSize) {
		*buf = make([]byte, hdr.PageSize)
	}
	for {
		var ph ltx.PageHeader
		err := dec.DecodePage(&ph, *buf)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return hdr, ltx.Trailer{}, damaged(err)
		}
		if ph.Pgno > hdr.Commit || ph.Pgno == hdr.LockPgno() {
			return hdr, ltx.Trailer{}, damaged(fmt.Errorf("page %d does not belong in a database of %d pages", ph.Pgno, hdr.Commit))
		}
		if _, err := img.WriteAt(*buf, int64(ph.Pgno-1)*int64(hdr.PageSize)); err != nil {
			return hdr, ltx.Trailer{}, err
		}
	}
	if err := dec.Close(); err != nil {
		return hdr, ltx.Trailer{}, damaged(err)
	}
	if err := img.Truncate(int64(hdr.Commit) * int64(hdr.PageSize)); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	return hdr, dec.Trailer(), nil
}

// encodeImage encodes every page of the database image (all but the lock
// page) and returns its checksum.
func encodeImage(enc *ltx.Encoder, img *os.File, pageSize, commit uint32) (ltx.Checksum, error) {
	sums := newPageSums(pageSize)
	buf := getPage(pageSize)
	defer putPage(buf)
	r := bufio.NewReaderSize(io.NewSectionReader(img, 0, int64(commit)*int64(pageSize)), 256<<10)
	lock := ltx.LockPgno(pageSize)
	for pgno := uint32(1); pgno <= commit; pgno++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0, fmt.Errorf("read page %d of the image: %w", pgno, err)
		}
		if pgno == lock {
			continue
		}
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, buf); err != nil {
			return 0, fmt.Errorf("encode page %d: %w", pgno, err)
		}
		sums.set(pgno, buf)
	}
	return sums.checksum(), nil
}
