package replicate

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/superfly/ltx"
)

// spool is the on-disk queue of one database's captured transactions that
// are not yet in the store. Each entry is a complete LTX file:
// "<txid %016x>.ltx" holds one transaction, "<txid %016x>.snap.ltx" a
// snapshot taken at that TXID. An entry exists on disk before the commit it
// holds is acknowledged to SQLite.
type spool struct {
	dir string
}

type spoolEntry struct {
	TXID     uint64
	Snapshot bool
	Path     string
}

func (s *spool) path(txid uint64, snapshot bool) string {
	if snapshot {
		return filepath.Join(s.dir, fmt.Sprintf("%016x.snap.ltx", txid))
	}
	return filepath.Join(s.dir, fmt.Sprintf("%016x.ltx", txid))
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
		if !strings.HasSuffix(name, ".ltx") || len(name) < 16 {
			continue
		}
		txid, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		out = append(out, spoolEntry{TXID: txid, Snapshot: strings.HasSuffix(name, ".snap.ltx"), Path: filepath.Join(s.dir, name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TXID < out[j].TXID })
	return out, nil
}

// write encodes one LTX file at path; fill encodes its pages. The file is
// complete (closed) when write returns; it is not fsynced (see syncAll).
func writeLTX(path string, hdr ltx.Header, fill func(enc *ltx.Encoder) (ltx.Checksum, error)) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create spool dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close spool file: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	enc, err := ltx.NewEncoder(bw)
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
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write spool file: %w", err)
	}
	return nil
}

// readHeader returns the header and trailer of a spooled LTX file, verifying
// that it is complete.
func readEntry(path string) (ltx.Header, ltx.Trailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	defer f.Close()
	dec := ltx.NewDecoder(bufio.NewReaderSize(f, 64<<10))
	if err := dec.Verify(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("verify spool file %s: %w", path, err)
	}
	return dec.Header(), dec.Trailer(), nil
}

// syncPaths fsyncs files and their directory.
func syncPaths(dir string, paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // already uploaded and removed
		} else if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("fsync spool file: %w", err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	return d.Sync()
}
