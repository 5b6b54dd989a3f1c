package replicate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// foldLimit bounds what foldSnapshot merges in memory: the spooled snapshot,
// and the records after it.
const foldLimit = 1 << 20

// foldSnapshot uploads a spooled snapshot the store does not hold yet
// together with the records spooled after it, as one snapshot at the last
// of them: a database created and written within one upload interval (a new
// tenant's database, a database first seen) then costs one upload instead of
// two. The replica offers the same restore points as two uploads would:
// the records of one upload are merged anyway (uploadSegments).
//
// It returns how many of the entries after snap it uploaded with it; 0, and
// nothing uploaded, when there is nothing to fold or the fold does not
// apply (a small snapshot only; the records must follow it without a gap,
// chain onto its checksum and leave every page of the database in the
// result). The caller then uploads the snapshot alone.
func (u *uploader) foldSnapshot(ctx context.Context, snap spoolEntry, rest []spoolEntry, limit uint64) (int, error) {
	fi, err := os.Stat(snap.Path)
	if err != nil {
		return 0, fmt.Errorf("stat spooled snapshot: %w", err)
	}
	if fi.Size() > foldLimit {
		return 0, nil
	}
	var segs []spoolEntry
	var recs [][]record
	total, next := fi.Size(), snap.TXID+1
	for _, e := range rest {
		if e.Snapshot || e.TXID != next || e.TXID > limit {
			break
		}
		rs, _, err := readRecords(e.Path)
		if err != nil {
			return 0, fmt.Errorf("read spool segment: %w", err)
		}
		if len(rs) == 0 || rs[0].TXID != next {
			break
		}
		n := int64(0)
		for _, r := range rs {
			n += r.Len
		}
		if total+n > foldLimit {
			break
		}
		segs, recs = append(segs, e), append(recs, rs)
		total += n
		next = rs[len(rs)-1].TXID + 1
	}
	if len(segs) == 0 {
		return 0, nil
	}
	body, hdr, trailer, ok, err := foldBody(snap.Path, segs, recs)
	if err != nil || !ok {
		return 0, err
	}
	paths := []string{snap.Path}
	for _, e := range segs {
		paths = append(paths, e.Path)
	}
	info := s3backend.FileInfo{DB: u.rel, Level: s3backend.LevelSnapshot, MinTXID: 1, MaxTXID: uint64(hdr.MaxTXID), CreatedAt: time.UnixMilli(hdr.Timestamp)}
	txns := int(uint64(hdr.MaxTXID) - snap.TXID + 1)
	err = u.put(ctx, info, bytes.NewReader(body), int64(len(body)), Pos{TXID: uint64(hdr.MaxTXID), Checksum: trailer.PostApplyChecksum}, paths, txns)
	if err != nil {
		return 0, err
	}
	return len(segs), nil
}

// foldBody encodes the snapshot at snapPath with the records of segs applied,
// latest page wins, as one snapshot. ok is false when the records do not
// chain onto the snapshot or the result lacks a page of the database.
func foldBody(snapPath string, segs []spoolEntry, recs [][]record) (body []byte, _ ltx.Header, _ ltx.Trailer, ok bool, err error) {
	stage := &memStage{}
	index := map[uint32]int64{}
	put := func(pgno uint32, data []byte) error {
		if at, ok := index[pgno]; ok {
			copy(stage.b[at:at+int64(len(data))], data)
			return nil
		}
		index[pgno] = int64(len(stage.b))
		stage.b = append(stage.b, data...)
		return nil
	}
	f, err := os.Open(snapPath)
	if err != nil {
		return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("open spooled snapshot: %w", err)
	}
	defer f.Close() // read only
	dec := ltx.NewDecoder(bufio.NewReaderSize(f, 64<<10))
	if err := dec.DecodeHeader(); err != nil {
		return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("decode spooled snapshot %s: %w", snapPath, err)
	}
	snap := dec.Header()
	buf := make([]byte, snap.PageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, buf); err == io.EOF {
			break
		} else if err != nil {
			return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("decode spooled snapshot %s: %w", snapPath, err)
		}
		if err := put(ph.Pgno, buf); err != nil {
			return nil, ltx.Header{}, ltx.Trailer{}, false, err
		}
	}
	if err := dec.Close(); err != nil {
		return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("verify spooled snapshot %s: %w", snapPath, err)
	}
	sum := dec.Trailer().PostApplyChecksum
	var last rawTxn
	txid := uint64(snap.MaxTXID)
	for i, e := range segs {
		sf, err := os.Open(e.Path)
		if err != nil {
			return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("open spool segment: %w", err)
		}
		for _, rec := range recs[i] {
			h, err := readRawHeader(sf, rec)
			if err == nil && (rec.TXID != txid+1 || h.PageSize != snap.PageSize || h.Pre != sum) {
				sf.Close() //walfs:ignore-error read only
				return nil, ltx.Header{}, ltx.Trailer{}, false, nil
			}
			if err == nil {
				err = eachRawPage(sf, rec, h, put)
			}
			if err != nil {
				sf.Close() //walfs:ignore-error read only
				return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("record %d: %w", rec.TXID, err)
			}
			last, sum, txid = h, h.Post, rec.TXID
		}
		sf.Close() //walfs:ignore-error read only
	}
	// Every page of the database up to its size, or it is no snapshot.
	lock := ltx.LockPgno(snap.PageSize)
	for pgno := uint32(1); pgno <= last.Commit; pgno++ {
		if _, ok := index[pgno]; !ok && pgno != lock {
			return nil, ltx.Header{}, ltx.Trailer{}, false, nil
		}
	}
	out := ltx.Header{
		Version: ltx.Version, Flags: snap.Flags, PageSize: snap.PageSize, Commit: last.Commit,
		MinTXID: 1, MaxTXID: ltx.TXID(txid), Timestamp: last.Timestamp,
	}
	var w bytes.Buffer
	var trailer ltx.Trailer
	if err := encodeStaged(&w, out, stage, index, last.Post, &trailer); err != nil {
		return nil, ltx.Header{}, ltx.Trailer{}, false, fmt.Errorf("encode folded snapshot: %w", err)
	}
	return w.Bytes(), out, trailer, true, nil
}
