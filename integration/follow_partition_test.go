package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/walfs/walfs/integration/testserver"
)

// A primary cut off long enough for its lease to expire (here: frozen with
// SIGSTOP, so it can neither renew nor notice) while a follower is promoted
// comes back to a lease another walfs holds: it must never upload again,
// stop serving (its mount goes away, so the app's writes fail) and say so in
// one line.
func TestFollowPartitionedPrimaryStops(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	const prefix = "partition"
	replica := s3URL(srv, prefix)
	a := startMountAt(t, env, filepath.Join(t.TempDir(), "a"), replica, filepath.Join(t.TempDir(), "mnt"), "--lease-ttl", "6s")
	db := filepath.Join(a.Mnt, "app.db")
	insertRows(t, db, 1, 50)
	a.Sync()
	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "b"), replica, filepath.Join(t.TempDir(), "mnt"))
	waitSameDB(t, db, filepath.Join(b.Mnt, "app.db"))

	// The primary freezes; its process still exists, so the follower
	// cannot call it gone and waits for its lease to expire.
	thawA := frozen(t, a)
	promote(t, b)
	insertRows(t, filepath.Join(b.Mnt, "app.db"), 51, 60)
	b.Sync()
	ltxObjects := func() map[string]string {
		out := map[string]string{}
		for k, v := range stableObjects(t, srv, prefix+"/") {
			if strings.HasSuffix(k, ".ltx") {
				out[k] = v
			}
		}
		return out
	}
	before := ltxObjects()

	// The old primary wakes up and finds its lease taken.
	thawB := frozen(t, b) // nothing else changes the replica meanwhile
	thawA()
	a.wait(1)
	if isMounted(a.Mnt) {
		t.Errorf("the fenced primary's mount is still there")
	}
	lines := errorLines(a.log.String())
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "lease") || !strings.Contains(lines[len(lines)-1], "stopped serving") {
		t.Errorf("the fenced primary's last error line does not say it lost its lease and stopped:\n%s", a.log)
	}
	if len(lines) > 0 {
		t.Logf("the fenced primary: %s", lines[len(lines)-1])
	}
	if d := diffObjects(before, ltxObjects()); len(d) > 0 {
		t.Errorf("the fenced primary changed the replica: %v", d)
	}
	thawB()
	if n := missingAcks(t, filepath.Join(b.Mnt, "app.db"), 60); n != 0 {
		t.Errorf("%d rows missing on the new primary", n)
	}
}
