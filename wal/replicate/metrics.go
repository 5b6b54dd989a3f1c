package replicate

import (
	"os"
	"time"

	"github.com/superfly/ltx"
)

// DBStatus is the replication state of one database, for `walfs status` and
// the metrics. Counters count since the Replicator started.
type DBStatus struct {
	DB             string
	LocalTXID      uint64        // highest TXID captured and spooled
	ReplicatedTXID uint64        // highest TXID the store holds
	Lag            time.Duration // age of the oldest captured transaction not yet in the store; 0 when none
	SpoolBytes     int64         // bytes waiting in the local spool
	LastUpload     time.Time     // when the last upload finished; zero if none since start
	UploadError    string        // why the last upload attempt failed; "" when it succeeded
	LastError      string        // the last error of any kind (store call, upload, maintenance)
	LastErrorAt    time.Time

	UploadFailingSince time.Time // when the current run of failed uploads began; zero while uploads succeed
	UploadFailures     int       // failed upload attempts in that run

	Captured      uint64            // TXIDs assigned since start (one per transaction; local snapshots take one too)
	IndexFrames   uint64            // WAL frames captured on the wal-index's word, without reading them (passthrough; wal.PollIndexed)
	IndexRefused  uint64            // wal-indexes that disagreed with the WAL (each then unused until the WAL goes away)
	OutsideChecks uint64            // reconciles after writes outside SQLite's protocol (reconcile.go)
	OutsideSnaps  uint64            // of those, the ones that found the files changed and wrote a snapshot
	Uploads       uint64            // level-0 files and local snapshots uploaded
	UploadedBytes uint64            // their bytes
	Compactions   [4]uint64         // files written into levels 1..3 (index 0 unused)
	Snapshots     uint64            // snapshots written by maintenance (scheduled or size-triggered)
	Deleted       uint64            // files deleted by retention
	Errors        map[string]uint64 // failures by kind: upload, seed, compaction, snapshot, retention
	Levels        []LevelStatus     // what the replica holds, from walfs's index (no listing)

	Repairs    uint64   // inconsistent replicas replaced by a new snapshot (repair.go)
	LastRepair *Repair  // nil when none since start
	Stuck      []string // maintenance jobs that gave up, each with why; nil when none
}

// Repair describes one repair of an inconsistent replica.
type Repair struct {
	At   time.Time
	TXID uint64 // the new snapshot
	Why  string // what showed the replica inconsistent
}

// LevelStatus summarises one level of a database's replica.
type LevelStatus struct {
	Level   int
	Files   int
	Bytes   int64
	MinTXID uint64
	MaxTXID uint64
}

// Status returns the state of every tracked database, sorted by path. It
// sends no store requests and never waits for a commit or an upload.
func (r *Replicator) Status() []DBStatus {
	var out []DBStatus
	now := time.Now()
	for _, d := range r.all() {
		out = append(out, r.dbStatus(d, now))
	}
	return out
}

func (r *Replicator) dbStatus(d *DB, now time.Time) DBStatus {
	s := DBStatus{DB: d.rel, Errors: map[string]uint64{}}
	s.IndexFrames, s.IndexRefused = d.indexFrames.Load(), d.indexRefused.Load()
	s.OutsideChecks, s.OutsideSnaps = d.checked.Load(), d.checkSnaps.Load()
	up := d.up.Status()
	s.LocalTXID, s.ReplicatedTXID, s.LastUpload = up.Last, up.Uploaded.TXID, up.LastPut
	uploadErr := up.LastErr
	s.UploadFailingSince, s.UploadFailures = up.FailingSince, up.Failures
	if uploadErr != nil {
		s.UploadError = uploadErr.Error()
	}
	var oldest time.Time
	s.SpoolBytes, oldest = d.spool.pending(s.ReplicatedTXID)
	if s.LocalTXID > s.ReplicatedTXID {
		if oldest.IsZero() {
			oldest = s.LastUpload // unknown: the time since the last upload bounds it from below
		}
		if !oldest.IsZero() && now.After(oldest) {
			s.Lag = now.Sub(oldest)
		}
	}

	ev := r.maint.store.events(d.rel)
	s.Uploads, s.UploadedBytes = ev.uploads, ev.uploadBytes
	for l := 1; l < len(s.Compactions); l++ {
		s.Compactions[l] = ev.written[l]
	}
	s.Deleted = ev.deleted
	if ev.uploadErrs > 0 {
		s.Errors["upload"] = ev.uploadErrs
	}
	s.LastError, s.LastErrorAt = errString(ev.lastErr), ev.lastErrAt
	if dm := r.maint.lookup(d.rel); dm != nil {
		ms := dm.status()
		if s.LocalTXID > ms.baseTXID {
			s.Captured = s.LocalTXID - ms.baseTXID
		}
		s.Snapshots = ms.snapshots
		for k, n := range ms.errs {
			s.Errors[k] += n
		}
		if ms.lastErrAt.After(s.LastErrorAt) {
			s.LastError, s.LastErrorAt = errString(ms.lastErr), ms.lastErrAt
		}
		s.Repairs = ms.repairs
		if ms.repairs > 0 {
			s.LastRepair = &Repair{At: ms.lastRepair.at, TXID: ms.lastRepair.txid, Why: ms.lastRepair.why}
		}
		s.Stuck = ms.stuck
	}
	if uploadErr != nil && s.LastError == "" {
		s.LastError = uploadErr.Error()
	}

	level9, files := r.maint.store.all(d.rel)
	all := append(level9, files...)
	for _, level := range indexedLevels {
		var ls LevelStatus
		for _, f := range all {
			if f.Level != level {
				continue
			}
			if ls.Files == 0 || f.MinTXID < ls.MinTXID {
				ls.MinTXID = f.MinTXID
			}
			ls.Files++
			ls.Bytes += f.Size
			ls.MaxTXID = max(ls.MaxTXID, f.MaxTXID)
		}
		if ls.Files > 0 {
			ls.Level = level
			s.Levels = append(s.Levels, ls)
		}
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// pending returns the bytes in the spool and the commit time of the oldest
// spooled transaction after uploaded (zero when unknown or none). It reads
// the directory and one LTX header, never blocking the capture side.
func (s *spool) pending(uploaded uint64) (bytes int64, oldest time.Time) {
	entries, err := s.list()
	if err != nil {
		return 0, time.Time{}
	}
	for _, e := range entries {
		fi, err := os.Stat(e.Path)
		if err != nil {
			continue // uploaded and removed meanwhile
		}
		bytes += fi.Size()
		if oldest.IsZero() && e.TXID > uploaded {
			oldest = spooledCommitTime(e)
		}
	}
	return bytes, oldest
}

// spooledCommitTime reads the commit time of the first transaction in a
// spool entry: from the first record's header in a segment, from the LTX
// header of a snapshot.
func spooledCommitTime(e spoolEntry) time.Time {
	f, err := os.Open(e.Path)
	if err != nil {
		return time.Time{}
	}
	defer f.Close() // read only
	if !e.Snapshot {
		h, err := readRawHeader(f, record{TXID: e.TXID, Off: recordHeaderSize})
		if err != nil {
			return time.Time{}
		}
		return time.UnixMilli(h.Timestamp)
	}
	var b [ltx.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return time.Time{}
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b[:]); err != nil {
		return time.Time{}
	}
	return time.UnixMilli(hdr.Timestamp)
}
