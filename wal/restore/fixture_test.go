package restore

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
)

// model is a database history for building LTX fixtures: the full page image
// after every TXID, the pages each transaction wrote and its commit time.
// Checksums are computed the documented way (docs/format.md), independently
// of the code under test.
type model struct {
	pageSize   uint32
	states     []modelState // index = TXID; states[0] is the empty database
	written    [][]uint32   // pages written by each TXID
	times      []time.Time  // commit time of each TXID
	noChecksum bool         // encode files like Litestream: NoChecksum flag, no checksums
}

type modelState struct {
	commit uint32
	pages  map[uint32][]byte
}

var modelEpoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newModel(pageSize uint32) *model {
	return &model{
		pageSize: pageSize,
		states:   []modelState{{pages: map[uint32][]byte{}}},
		written:  [][]uint32{nil},
		times:    []time.Time{modelEpoch},
	}
}

// tx commits a transaction that resizes the database to commit pages and
// writes pgnos (pages added by growth are always written, as SQLite does).
// It returns the new TXID.
func (m *model) tx(commit uint32, pgnos ...uint32) uint64 {
	prev := m.states[len(m.states)-1]
	txid := uint64(len(m.states))
	next := modelState{commit: commit, pages: make(map[uint32][]byte, commit)}
	for pgno, data := range prev.pages {
		if pgno <= commit {
			next.pages[pgno] = data
		}
	}
	for pgno := prev.commit + 1; pgno <= commit; pgno++ {
		pgnos = append(pgnos, pgno)
	}
	slices.Sort(pgnos)
	pgnos = slices.Compact(pgnos)
	lock := ltx.LockPgno(m.pageSize)
	var wrote []uint32
	for _, pgno := range pgnos {
		if pgno > commit || pgno == lock {
			continue
		}
		data := make([]byte, m.pageSize)
		rng := rand.New(rand.NewPCG(txid, uint64(pgno)))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		next.pages[pgno] = data
		wrote = append(wrote, pgno)
	}
	m.states = append(m.states, next)
	m.written = append(m.written, wrote)
	m.times = append(m.times, modelEpoch.Add(time.Duration(txid)*time.Minute))
	return txid
}

// txs commits n transactions, each writing one page chosen at random and
// growing the database by one page every third transaction.
func (m *model) txs(n int) {
	for range n {
		cur := m.states[len(m.states)-1].commit
		commit := max(cur, 4)
		if len(m.states)%3 == 0 {
			commit++
		}
		m.tx(commit, uint32(len(m.states)%int(commit))+1)
	}
}

// image returns the database file at txid.
func (m *model) image(txid uint64) []byte {
	s := m.states[txid]
	b := make([]byte, int(s.commit)*int(m.pageSize))
	for pgno, data := range s.pages {
		copy(b[int(pgno-1)*int(m.pageSize):], data)
	}
	return b
}

// checksum returns the database checksum at txid.
func (m *model) checksum(txid uint64) ltx.Checksum {
	sum := ltx.ChecksumFlag
	for pgno, data := range m.states[txid].pages {
		sum ^= ltx.ChecksumPage(pgno, data)
	}
	return ltx.ChecksumFlag | sum
}

// encode returns the LTX file for transactions minTXID..maxTXID: every page
// for a snapshot (minTXID 1), else the pages written in the range. edit, if
// given, may change the header and the post-apply checksum before encoding.
func (m *model) encode(t testing.TB, minTXID, maxTXID uint64, edit func(*ltx.Header, *ltx.Checksum)) []byte {
	t.Helper()
	s := m.states[maxTXID]
	var pgnos []uint32
	if minTXID == 1 {
		for pgno := range s.pages {
			pgnos = append(pgnos, pgno)
		}
	} else {
		for txid := minTXID; txid <= maxTXID; txid++ {
			for _, pgno := range m.written[txid] {
				if pgno <= s.commit {
					pgnos = append(pgnos, pgno)
				}
			}
		}
	}
	slices.Sort(pgnos)
	pgnos = slices.Compact(pgnos)

	hdr := ltx.Header{
		Version:   ltx.Version,
		PageSize:  m.pageSize,
		Commit:    s.commit,
		MinTXID:   ltx.TXID(minTXID),
		MaxTXID:   ltx.TXID(maxTXID),
		Timestamp: m.times[maxTXID].UnixMilli(),
	}
	post := m.checksum(maxTXID)
	if m.noChecksum {
		hdr.Flags = ltx.HeaderFlagNoChecksum
		post = 0
	} else if minTXID > 1 {
		hdr.PreApplyChecksum = m.checksum(minTXID - 1)
	}
	if edit != nil {
		edit(&hdr, &post)
	}
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatalf("encode header %d-%d: %v", minTXID, maxTXID, err)
	}
	for _, pgno := range pgnos {
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, s.pages[pgno]); err != nil {
			t.Fatalf("encode page %d of %d-%d: %v", pgno, minTXID, maxTXID, err)
		}
	}
	enc.SetPostApplyChecksum(post)
	if err := enc.Close(); err != nil {
		t.Fatalf("close encoder %d-%d: %v", minTXID, maxTXID, err)
	}
	return buf.Bytes()
}

// put encodes minTXID..maxTXID and stores it at level under db.
func (m *model) put(t testing.TB, st s3backend.Store, db string, level int, minTXID, maxTXID uint64) s3backend.FileInfo {
	t.Helper()
	return m.putWith(t, st, db, level, minTXID, maxTXID, nil)
}

func (m *model) putWith(t testing.TB, st s3backend.Store, db string, level int, minTXID, maxTXID uint64, edit func(*ltx.Header, *ltx.Checksum)) s3backend.FileInfo {
	t.Helper()
	b := m.encode(t, minTXID, maxTXID, edit)
	info := s3backend.FileInfo{DB: db, Level: level, MinTXID: minTXID, MaxTXID: maxTXID, CreatedAt: m.times[maxTXID]}
	info, err := st.Write(context.Background(), info, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("store %d-%d: %v", minTXID, maxTXID, err)
	}
	return info
}

// putSnapshot stores a level-9 snapshot at txid.
func (m *model) putSnapshot(t testing.TB, st s3backend.Store, db string, txid uint64) s3backend.FileInfo {
	t.Helper()
	return m.put(t, st, db, s3backend.LevelSnapshot, 1, txid)
}

// putL0 stores one level-0 file per TXID in from..to.
func (m *model) putL0(t testing.TB, st s3backend.Store, db string, from, to uint64) {
	t.Helper()
	for txid := from; txid <= to; txid++ {
		m.put(t, st, db, s3backend.LevelL0, txid, txid)
	}
}

// key is the object key of a file, for expectations.
func key(db string, level int, minTXID, maxTXID uint64) string {
	return s3backend.Key(s3backend.FileInfo{DB: db, Level: level, MinTXID: minTXID, MaxTXID: maxTXID})
}

// planKeys returns the keys of a plan's files, for comparisons.
func planKeys(p *Plan) string {
	keys := make([]string, len(p.Files))
	for i, f := range p.Files {
		keys[i] = s3backend.Key(f)
	}
	return strings.Join(keys, " ")
}

// breakOpens wraps st so that the next n opens of key return a reader that
// fails with a transient error (a connection reset) after after bytes.
func breakOpens(st s3backend.Store, key string, n int, after int64) *memstore.Faulty {
	f := memstore.Wrap(st)
	f.Inject(memstore.Fault{
		Op: memstore.OpOpen, Times: n, ReadAfter: after,
		ReadErr: errors.New("connection reset by peer"),
		Match:   func(c memstore.Call) bool { return c.Key() == key },
	})
	return f
}

// openOffsets returns the offsets of every Open of key through f, in order.
func openOffsets(f *memstore.Faulty, key string) []int64 {
	var offs []int64
	for _, c := range f.Calls(memstore.OpOpen) {
		if c.Key() == key {
			offs = append(offs, c.Off)
		}
	}
	return offs
}
