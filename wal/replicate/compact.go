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

// maxCompactionInputs bounds the files merged into one compacted file, so a
// pass stays short after a long outage; the rest follow in the next pass.
const maxCompactionInputs = 1000

// compact merges the files of level-1 that level does not cover yet into new
// files at level, one per contiguous run of TXIDs. With nothing new below, it
// sends no request.
func (dm *dbMaint) compact(ctx context.Context, level int) error {
	done := max(dm.compacted[level], dm.floorNow()) // a repairing snapshot covers what is below the floor
	for _, f := range dm.m.store.files(dm.db, level) {
		done = max(done, f.MaxTXID)
	}
	var cands []s3backend.FileInfo
	for _, f := range dm.m.store.files(dm.db, level-1) {
		if f.MaxTXID > done {
			cands = append(cands, f)
		}
	}
	for len(cands) > 0 {
		n := 1
		for n < len(cands) && n < maxCompactionInputs && cands[n].MinTXID == cands[n-1].MaxTXID+1 {
			n++
		}
		merged, err := dm.compactRun(ctx, level, cands[:n])
		if err != nil {
			return err
		}
		cands = cands[merged:]
	}
	return nil
}

// compactRun merges a prefix of run (contiguous files of one level) into one
// file at level and returns how many files it merged: all of them, unless
// their checksum chain breaks (then the rest start the next file).
func (dm *dbMaint) compactRun(ctx context.Context, level int, run []s3backend.FileInfo) (_ int, err error) {
	in, err := dm.fetch(ctx, run)
	defer func() { err = errors.Join(err, in.remove()) }()
	if err != nil {
		return 0, err
	}
	n, err := chainedPrefix(in.paths)
	if err != nil {
		return 0, err
	}
	if n < len(run) {
		dm.log.Warn("checksum chain breaks inside a level; compacting the files before the break separately",
			"level", level-1, "after", s3backend.Key(run[n-1]), "before", s3backend.Key(run[n]))
	}
	out, err := os.CreateTemp(dm.m.tmpDir, "compact-*.ltx")
	if err != nil {
		return 0, fmt.Errorf("compact %s: %w", dm.db, err)
	}
	defer func() { err = errors.Join(err, removeScratch(out)) }()
	bw := bufio.NewWriterSize(out, 256<<10)
	inputs, closeInputs := fileInputs(in.paths[:n])
	hdr, _, err := mergeLTX(inputs, bw, dm.m.tmpDir)
	closeInputs()
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("compact %d files of level %d of %s: %w", n, level-1, dm.db, err)
	}
	info := s3backend.FileInfo{
		DB: dm.db, Level: level, MinTXID: uint64(hdr.MinTXID), MaxTXID: uint64(hdr.MaxTXID),
		CreatedAt: time.UnixMilli(hdr.Timestamp),
	}
	if err := dm.put(ctx, info, out); err != nil {
		return 0, err
	}
	dm.compacted[level] = max(dm.compacted[level], info.MaxTXID)
	dm.m.cache.drop(run[:n]...)
	dm.log.Debug("compacted", "level", level, "key", s3backend.Key(info), "inputs", n, "downloaded", in.downloaded)
	return n, nil
}

// put uploads the finished temp file f as info.
func (dm *dbMaint) put(ctx context.Context, info s3backend.FileInfo, f *os.File) error {
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", s3backend.Key(info), err)
	}
	if _, err := dm.m.store.Write(maintenanceCtx(ctx), info, bufio.NewReaderSize(f, 256<<10), size); err != nil {
		return fmt.Errorf("upload %s: %w", s3backend.Key(info), err)
	}
	return nil
}

// fetched is a set of replica files available locally, in order.
type fetched struct {
	paths      []string
	temps      []string // the downloaded ones, removed by remove
	downloaded int
}

// remove removes the downloaded files.
func (f *fetched) remove() error {
	var errs []error
	for _, p := range f.temps {
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("remove downloaded file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// fetch makes files available locally: from the write cache, else
// downloaded into temp files.
func (dm *dbMaint) fetch(ctx context.Context, files []s3backend.FileInfo) (*fetched, error) {
	out := &fetched{}
	if err := os.MkdirAll(dm.m.tmpDir, 0o700); err != nil {
		return out, fmt.Errorf("create temp dir: %w", err)
	}
	for _, info := range files {
		if f := dm.m.cache.open(info); f != nil {
			out.paths = append(out.paths, f.Name())
			f.Close() //walfs:ignore-error read only, opened to learn that the copy is whole
			continue
		}
		p, err := dm.download(ctx, info)
		if err != nil {
			return out, err
		}
		out.paths = append(out.paths, p)
		out.temps = append(out.temps, p)
		out.downloaded++
	}
	return out, nil
}

func (dm *dbMaint) download(ctx context.Context, info s3backend.FileInfo) (string, error) {
	rc, err := dm.m.store.Open(ctx, info, 0)
	if err != nil {
		return "", classify(fmt.Errorf("download %s: %w", s3backend.Key(info), err)) // gone: inconsistent
	}
	defer rc.Close()
	f, err := os.CreateTemp(dm.m.tmpDir, "fetch-*.ltx")
	if err != nil {
		return "", fmt.Errorf("download %s: %w", s3backend.Key(info), err)
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("download %s: %w", s3backend.Key(info), err), os.Remove(f.Name()))
	}
	return f.Name(), nil
}

// fileInputs opens paths one at a time for mergeLTX, which reads its inputs
// in order: at most one file is open at once.
func fileInputs(paths []string) ([]func() (io.Reader, error), func()) {
	var open *os.File
	closeOpen := func() {
		if open != nil {
			open.Close() //walfs:ignore-error read only: a close error loses nothing
			open = nil
		}
	}
	inputs := make([]func() (io.Reader, error), len(paths))
	for i, p := range paths {
		inputs[i] = func() (io.Reader, error) {
			closeOpen()
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			open = f
			return bufio.NewReaderSize(f, 64<<10), nil
		}
	}
	return inputs, closeOpen
}

// chainedPrefix returns how many of the LTX files at paths, from the first,
// chain by checksum: each pre-apply checksum equals the post-apply checksum
// before it (files without checksums chain with anything). It reads only
// headers and trailers; mergeLTX verifies the rest.
func chainedPrefix(paths []string) (int, error) {
	var prev ltx.Trailer
	var prevHdr ltx.Header
	for i, p := range paths {
		hdr, trailer, err := peekLTX(p)
		if err != nil {
			return 0, err
		}
		if i > 0 && !hdr.NoChecksum() && !prevHdr.NoChecksum() && hdr.PreApplyChecksum != prev.PostApplyChecksum {
			return i, nil
		}
		prev, prevHdr = trailer, hdr
	}
	return len(paths), nil
}

// peekLTX reads the header and trailer of the LTX file at path.
func peekLTX(path string) (ltx.Header, ltx.Trailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	defer f.Close()
	var hb [ltx.HeaderSize]byte
	var tb [ltx.TrailerSize]byte
	var hdr ltx.Header
	var trailer ltx.Trailer
	fi, err := f.Stat()
	if err == nil && fi.Size() < ltx.HeaderSize+ltx.TrailerSize {
		err = fmt.Errorf("%d bytes is too small for an LTX file", fi.Size())
	}
	if err == nil {
		_, err = f.ReadAt(hb[:], 0)
	}
	if err == nil {
		_, err = f.ReadAt(tb[:], fi.Size()-ltx.TrailerSize)
	}
	if err == nil {
		err = hdr.UnmarshalBinary(hb[:])
	}
	if err == nil {
		err = trailer.UnmarshalBinary(tb[:])
	}
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, damaged(fmt.Errorf("read ltx %s: %w", path, err))
	}
	return hdr, trailer, nil
}
