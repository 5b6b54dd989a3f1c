package replicate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/superfly/ltx"
)

// The spool is the on-disk queue of one database's captured transactions
// that are not yet in the store. It lives in <state>/spool/<db>/ and holds:
//
//   - segments, "<first txid %016x>.seg": append-only logs of records, one
//     record per transaction;
//   - snapshots, "<txid %016x>.snap.ltx": a whole-database LTX file.
//
// A record (record.go: the transaction's raw pages) is appended before the
// commit it holds is acknowledged to SQLite: in one write, or for a big
// transaction in chunks whose headers are written last (spoolwriter.go); a
// record cut short by a crash fails its CRC and ends the scan. The uploader only reads segments the capture side
// has closed (rotated), so the two never touch the same file.
//
// Record layout, big-endian: magic "WREC", txid u64, length u32, CRC-32C of
// the payload u32, payload (length bytes).
type spool struct {
	dir string
}

const (
	recordMagic      = "WREC"
	recordHeaderSize = 4 + 8 + 4 + 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type spoolEntry struct {
	TXID     uint64 // first TXID in the file
	Snapshot bool
	Path     string
}

func (s *spool) segmentPath(first uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.seg", first))
}

func (s *spool) snapshotPath(txid uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.snap.ltx", txid))
}

// list returns the entries in TXID order.
func (s *spool) list() ([]spoolEntry, error) {
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list spool %s: %w", s.dir, err)
	}
	var out []spoolEntry
	for _, de := range des {
		name := de.Name()
		snap := strings.HasSuffix(name, ".snap.ltx")
		if (!snap && !strings.HasSuffix(name, ".seg")) || len(name) < 16 {
			continue
		}
		txid, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		out = append(out, spoolEntry{TXID: txid, Snapshot: snap, Path: filepath.Join(s.dir, name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TXID < out[j].TXID })
	return out, nil
}

// record locates one transaction inside a segment.
type record struct {
	TXID uint64
	Off  int64 // offset of the payload
	Len  int64
}

// readRecords scans a segment. A torn or corrupt tail (walfs died while
// appending) ends the scan: validEnd is where the good records stop.
func readRecords(path string) (recs []record, validEnd int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close() // read only
	br := bufio.NewReaderSize(f, 256<<10)
	var off int64
	var hdr [recordHeaderSize]byte
	buf := make([]byte, 0, 64<<10)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return recs, off, nil
		}
		if string(hdr[:4]) != recordMagic {
			return recs, off, nil
		}
		txid := binary.BigEndian.Uint64(hdr[4:12])
		n := int64(binary.BigEndian.Uint32(hdr[12:16]))
		sum := binary.BigEndian.Uint32(hdr[16:20])
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return recs, off, nil
		}
		if crc32.Checksum(buf, crcTable) != sum {
			return recs, off, nil
		}
		recs = append(recs, record{TXID: txid, Off: off + recordHeaderSize, Len: n})
		off += recordHeaderSize + n
	}
}

// encodeLTX encodes one LTX file into w; fill encodes its pages and returns
// the post-apply checksum.
func encodeLTX(w io.Writer, hdr ltx.Header, fill func(enc *ltx.Encoder) (ltx.Checksum, error)) error {
	var t ltx.Trailer
	return encodeLTXTrailer(w, hdr, &t, fill)
}

// encodeLTXTrailer is encodeLTX that also returns the trailer written.
func encodeLTXTrailer(w io.Writer, hdr ltx.Header, trailer *ltx.Trailer, fill func(enc *ltx.Encoder) (ltx.Checksum, error)) error {
	enc, err := ltx.NewEncoder(w)
	if err != nil {
		return err
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		return fmt.Errorf("encode ltx header: %w", err)
	}
	post, err := fill(enc)
	if err != nil {
		return err
	}
	enc.SetPostApplyChecksum(post)
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode ltx: %w", err)
	}
	*trailer = enc.Trailer()
	return nil
}

// writeLTXFile encodes one LTX file at path, complete but not yet durable
// when it returns: the spool writer syncs it only when the spool is synced
// (spoolWriter.unsynced).
func writeLTXFile(path string, hdr ltx.Header, fill func(enc *ltx.Encoder) (ltx.Checksum, error)) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create spool dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close() //walfs:ignore-error the file is removed next: its close error does not matter
			if rerr := os.Remove(tmp); rerr != nil {
				// Harmless (list ignores it; the next snapshot of this
				// TXID overwrites it), but say so.
				err = errors.Join(err, fmt.Errorf("remove unfinished spool file: %w", rerr))
			}
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	if err := encodeLTX(bw, hdr, fill); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write spool file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close spool file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename spool file: %w", err)
	}
	return nil
}

// readLTXTrailer verifies a whole LTX file and returns its header and trailer.
func readLTXTrailer(r io.Reader) (ltx.Header, ltx.Trailer, error) {
	dec := ltx.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	if err := dec.Verify(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	return dec.Header(), dec.Trailer(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close() // a directory opened to fsync it; Sync reports what matters
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync spool dir: %w", err)
	}
	return nil
}
