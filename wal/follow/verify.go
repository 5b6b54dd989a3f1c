package follow

import (
	"context"
	"fmt"
	"os"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

// Verification is one followed database checked against the replica.
type Verification struct {
	DB          string
	TXID        uint64       // the point the follower serves
	Live        ltx.Checksum // the database file's checksum, read now
	Replica     ltx.Checksum // the replica's post-apply checksum at TXID
	ReplicaTXID uint64       // the replica's newest TXID
	Difference  string       // why live and replica differ; "" when equal
	Err         string       // why it could not be checked
}

// Equal reports whether the follower serves exactly the replica's point.
func (v Verification) Equal() bool { return v.Difference == "" && v.Err == "" }

// Verify reads every followed database whole and compares its checksum
// with the replica's post-apply checksum at the TXID it serves (the
// trailer of the file that ends there; one listing and one small ranged
// read per database). Updates wait while it runs.
func (f *Follower) Verify(ctx context.Context) []Verification {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.mu.RLock()
	var sts []*dbState
	for _, db := range sortedKeys(f.dbs) {
		sts = append(sts, f.dbs[db])
	}
	f.mu.RUnlock()
	var out []Verification
	for _, st := range sts {
		out = append(out, f.verifyOne(ctx, st))
	}
	return out
}

func (f *Follower) verifyOne(ctx context.Context, st *dbState) Verification {
	f.mu.RLock()
	v := Verification{DB: st.rel, TXID: st.txid}
	pageSize, pages := st.pageSize, st.pages
	f.mu.RUnlock()
	file, err := os.Open(f.path(st.rel))
	if err != nil {
		v.Err = err.Error()
		return v
	}
	defer file.Close() // read only
	if v.Live, err = restore.Checksum(file, pageSize, pages); err != nil {
		v.Err = err.Error()
		return v
	}
	files, err := listAll(ctx, f.opts.Store, st.rel, true)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	var at *s3backend.FileInfo
	for i, info := range files {
		v.ReplicaTXID = max(v.ReplicaTXID, info.MaxTXID)
		if info.MaxTXID == st.txid && (at == nil || info.Size < at.Size) {
			at = &files[i]
		}
	}
	if at == nil {
		v.Err = fmt.Sprintf("the replica keeps no file ending at TXID %d (compacted past it; the next update moves on)", st.txid)
		return v
	}
	if v.Replica, err = restore.ReadPostApply(ctx, f.opts.Store, *at); err != nil {
		v.Err = err.Error()
		return v
	}
	if v.Replica == 0 {
		v.Err = fmt.Sprintf("%s tracks no checksum (written by Litestream?)", s3backend.Key(*at))
	} else if v.Replica != v.Live {
		v.Difference = fmt.Sprintf("the file's checksum is %s, the replica's at TXID %d is %s", v.Live, st.txid, v.Replica)
	}
	return v
}
