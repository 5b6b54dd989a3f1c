package replicate

import (
	"time"
)

// What the upload queue (the spool) sends and what it drops, so that lag
// stays bounded whatever the workload. A batch (uploadOnce) takes everything
// pending: the newest spooled snapshot and every closed segment after it.
//
//   - A spooled snapshot holds the whole database. Once it is in the store a
//     restore of the latest point starts from it, so what was spooled before
//     it is never needed and is removed unsent. The points in time it held
//     never reached the store; TXIDs stay contiguous from the snapshot on,
//     and a restore plan, compaction and retention already treat the TXIDs
//     below a snapshot as covered by it (docs/format.md). A database deleted
//     and recreated several times a second spools a snapshot each time;
//     sending each one, a second apart, built a backlog that only grew.
//   - A deleted database (or one renamed away) has nothing left to restore
//     to: what it spooled and did not upload yet is dropped. The replica
//     keeps what it holds, as before, and still restores to the last point
//     uploaded; retention treats it as it treats any database.
//
// Segments never straddle a snapshot or a drop: both close the open segment
// first, so whole spool files are dropped.

// supersede removes the spool entries (in TXID order) that will never be
// uploaded and returns the rest: at most one snapshot, first, then
// segments. Caller holds u.upMu.
func (u *uploader) supersede(entries []spoolEntry) ([]spoolEntry, error) {
	u.mu.Lock()
	uploaded, dropTo := u.uploaded.TXID, u.dropTo
	u.mu.Unlock()
	floor := dropTo // entries starting at or below floor are not uploaded
	for _, e := range entries {
		if e.Snapshot && e.TXID > max(uploaded, dropTo) {
			floor = max(floor, e.TXID-1)
		}
	}
	var keep []spoolEntry
	var dropped int
	for _, e := range entries {
		if e.TXID > floor && !(e.Snapshot && e.TXID <= uploaded) {
			keep = append(keep, e)
			continue
		}
		if err := u.spool.remove(e.Path); err != nil {
			return nil, err
		}
		dropped++
	}
	if dropped > 0 {
		u.log.Debug("dropped spool files a newer snapshot or a delete made unnecessary", "files", dropped, "through_txid", floor)
	}
	u.mu.Lock()
	if u.last <= u.dropTo && u.last > u.uploaded.TXID {
		// Everything pending belonged to the deleted database.
		u.last = u.uploaded.TXID
		u.notify()
	}
	u.mu.Unlock()
	return keep, nil
}

// dropPending gives up uploading what d spooled so far: its database was
// deleted or renamed away. The uploader removes the spool files on its next
// pass (supersede); a database created at the same path starts with a
// snapshot at a later TXID. Caller holds d.mu.
func (d *DB) dropPending() {
	d.spool.drop()
	if n, uploaded := d.up.drop(d.txid); n > 0 {
		d.log.Info("database deleted: its transactions not yet uploaded are dropped; the replica keeps what it holds",
			"dropped", n, "replica_txid", uploaded)
	}
}

// drop marks every TXID up to txid as not to be uploaded and wakes the
// uploader to remove their spool files. It returns how many spooled TXIDs
// were waiting and the TXID the store holds.
func (u *uploader) drop(txid uint64) (pending, uploaded uint64) {
	u.mu.Lock()
	uploaded = u.uploaded.TXID
	if u.last > uploaded {
		pending = u.last - uploaded
	}
	u.dropTo = max(u.dropTo, txid)
	u.mu.Unlock()
	u.kick()
	return pending, uploaded
}

// result records the outcome of an upload attempt for Status, the log and
// whoever waits on progress. On failure it returns when the current run of
// failures began and how many attempts it holds; on success, those of the
// run that just ended (zero when there was none).
func (u *uploader) result(err error, now time.Time) (failingSince time.Time, failures int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastErr = err
	u.notify()
	if err == nil {
		failingSince, failures = u.failingSince, u.failures
		u.failingSince, u.failures = time.Time{}, 0
		return failingSince, failures
	}
	if u.failures == 0 {
		u.failingSince = now
	}
	u.failures++
	return u.failingSince, u.failures
}
