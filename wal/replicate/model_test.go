package replicate

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// model is a database that tests replicate by hand, as the uploader would:
// a snapshot, then level-0 files of one or more transactions each, with real
// LTX checksums. It remembers the database image at every TXID a file ends on.
type model struct {
	t        testing.TB
	db       string
	pageSize uint32
	pages    [][]byte // page pgno at pages[pgno-1]
	sums     *pageSums
	txid     uint64
	rng      *rand.Rand
	images   map[uint64][]byte    // database image after each landing TXID (nil: not kept)
	times    map[uint64]time.Time // commit time of each landing TXID
}

func newModel(t testing.TB, db string, nPages int, seed uint64) *model {
	m := &model{
		t: t, db: db, pageSize: 512, sums: newPageSums(512),
		rng: rand.New(rand.NewPCG(seed, seed)), images: map[uint64][]byte{}, times: map[uint64]time.Time{},
	}
	for range nPages {
		m.pages = append(m.pages, m.randomPage())
	}
	for i, p := range m.pages {
		m.sums.set(uint32(i+1), p)
	}
	return m
}

func (m *model) randomPage() []byte {
	p := make([]byte, m.pageSize)
	// Half random, half zeros: compressible like real pages, so sizes vary.
	for i := range len(p) / 2 {
		p[i] = byte(m.rng.UintN(256))
	}
	return p
}

func (m *model) image() []byte { return bytes.Join(m.pages, nil) }

func (m *model) remember(at time.Time) {
	if m.images != nil {
		m.images[m.txid] = m.image()
	}
	m.times[m.txid] = at
}

// forgetImages stops keeping an image per TXID (long simulations).
func (m *model) forgetImages() *model {
	m.images = nil
	return m
}

// snapshot writes a level-9 snapshot of the current state at a new TXID, as
// walfs does at first sight of a database (or after a lineage break).
func (m *model) snapshot(st s3backend.Store, at time.Time) s3backend.FileInfo {
	m.txid++
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: m.pageSize, Commit: uint32(len(m.pages)),
		MinTXID: 1, MaxTXID: ltx.TXID(m.txid), Timestamp: at.UnixMilli(),
	}
	var buf bytes.Buffer
	err := encodeLTX(&buf, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
		for i, p := range m.pages {
			if err := enc.EncodePage(ltx.PageHeader{Pgno: uint32(i + 1)}, p); err != nil {
				return 0, err
			}
		}
		return m.sums.checksum(), nil
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.remember(at)
	return m.put(st, s3backend.LevelSnapshot, 1, m.txid, at, buf.Bytes())
}

// batch commits n random transactions and uploads them as one level-0 file.
func (m *model) batch(st s3backend.Store, at time.Time, n int) s3backend.FileInfo {
	pre := m.sums.checksum()
	first := m.txid + 1
	changed := map[uint32]bool{}
	for range n {
		m.txid++
		switch r := m.rng.IntN(10); {
		case r == 0 && len(m.pages) > 4: // shrink
			m.pages = m.pages[:len(m.pages)-1-m.rng.IntN(2)]
		case r == 1: // grow: the new pages are written
			for range 1 + m.rng.IntN(3) {
				m.pages = append(m.pages, m.randomPage())
				changed[uint32(len(m.pages))] = true
			}
		}
		for range 1 + m.rng.IntN(3) {
			pgno := 1 + m.rng.IntN(len(m.pages))
			m.pages[pgno-1] = m.randomPage()
			changed[uint32(pgno)] = true
		}
	}
	commit := uint32(len(m.pages))
	m.sums.truncate(commit)
	pgnos := slices.Sorted(maps.Keys(changed))
	pgnos = slices.DeleteFunc(pgnos, func(p uint32) bool { return p > commit })
	for _, p := range pgnos {
		m.sums.set(p, m.pages[p-1])
	}
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: m.pageSize, Commit: commit,
		MinTXID: ltx.TXID(first), MaxTXID: ltx.TXID(m.txid), Timestamp: at.UnixMilli(), PreApplyChecksum: pre,
	}
	var buf bytes.Buffer
	err := encodeLTX(&buf, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
		for _, p := range pgnos {
			if err := enc.EncodePage(ltx.PageHeader{Pgno: p}, m.pages[p-1]); err != nil {
				return 0, err
			}
		}
		return m.sums.checksum(), nil
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.remember(at)
	return m.put(st, s3backend.LevelL0, first, m.txid, at, buf.Bytes())
}

func (m *model) put(st s3backend.Store, level int, minTXID, maxTXID uint64, at time.Time, data []byte) s3backend.FileInfo {
	info := s3backend.FileInfo{DB: m.db, Level: level, MinTXID: minTXID, MaxTXID: maxTXID, CreatedAt: at}
	out, err := st.Write(m.t.Context(), info, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}
