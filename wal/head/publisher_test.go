package head_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/head"
)

// An upload is published at once, with everything a follower needs.
func TestPublishesUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil)
		upload(p, "app.db", 1, 3)
		synctest.Wait()
		rec := stored(t, s.Store)
		want := head.DB{TXID: 3, Checksum: ltx.Checksum(0x8000000000000003), Commit: commitTime,
			Files: []head.File{{Level: 0, Min: 1, Max: 3, Size: 300}}}
		if got := rec.DBs["app.db"]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("entry: got %+v, want %+v", got, want)
		}
		if rec.Version != head.Version || rec.Seq != 1 || rec.Writer != "test-writer" || !rec.Written.Equal(commitTime) {
			t.Errorf("record: %+v", rec)
		}
		st := p.Status()
		if st.Publishes != 1 || st.Pending || st.LastErr != nil || st.Seq != 1 {
			t.Errorf("status: %+v", st)
		}
		// Nothing more happens while nothing changes.
		time.Sleep(time.Hour)
		if puts, _ := s.counts(); puts != 1 {
			t.Errorf("%d PUTs after an hour idle, want 1", puts)
		}
	})
}

// Any number of changes made while a PUT is in flight cause exactly one
// more PUT, which carries all of them.
func TestCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil)
		release := s.holdPuts()
		upload(p, "a.db", 1, 1)
		<-s.entered // the first PUT is in flight
		for i := range 20 {
			upload(p, fmt.Sprintf("db%02d.db", i), 1, uint64(i+1))
			upload(p, "a.db", uint64(i+2), uint64(i+2))
		}
		synctest.Wait()
		if puts, _ := s.counts(); puts != 1 {
			t.Fatalf("%d PUTs while the first is held, want 1", puts)
		}
		release()
		synctest.Wait()
		if puts, _ := s.counts(); puts != 2 {
			t.Fatalf("%d PUTs, want 2: the held one and one more", puts)
		}
		rec := stored(t, s.Store)
		if len(rec.DBs) != 21 || rec.DBs["a.db"].TXID != 21 || len(rec.DBs["a.db"].Files) != 21 {
			t.Fatalf("record after the second PUT: %d dbs, a.db %+v", len(rec.DBs), rec.DBs["a.db"])
		}
		if st := p.Status(); st.Publishes != 2 || st.Pending {
			t.Errorf("status: %+v", st)
		}
	})
}

// A record another writer changed is read again and merged: its entries
// for databases this publisher has not touched are kept.
func TestMergesAfterPreconditionFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil) // seeds: no object
		other := head.Record{Version: head.Version, Seq: 41, Writer: "other", DBs: map[string]head.DB{
			"other.db": {TXID: 9, Files: []head.File{{Level: 0, Min: 9, Max: 9, Size: 10}}},
			"a.db":     {TXID: 2, Files: []head.File{{Level: 0, Min: 2, Max: 2, Size: 10}}},
		}}
		if _, err := s.Store.PutIfAbsent(t.Context(), head.Key, mustMarshal(t, other)); err != nil {
			t.Fatal(err)
		}
		upload(p, "a.db", 5, 6)
		synctest.Wait()
		rec := stored(t, s.Store)
		if rec.Seq != 42 || rec.Writer != "test-writer" {
			t.Errorf("seq %d writer %q, want 42 and ours", rec.Seq, rec.Writer)
		}
		if got := rec.DBs["other.db"]; got.TXID != 9 || len(got.Files) != 1 {
			t.Errorf("other.db: %+v, want the other writer's entry", got)
		}
		if got := rec.DBs["a.db"]; got.TXID != 6 {
			t.Errorf("a.db: %+v, want ours (txid 6)", got)
		}
		if puts, gets := s.counts(); puts != 2 || gets != 2 {
			t.Errorf("%d PUTs and %d GETs, want 2 of each (seed, failed create, read, replace)", puts, gets)
		}
		if st := p.Status(); st.Publishes != 1 || st.Errors != 0 {
			t.Errorf("status: %+v; a lost race is no failure", st)
		}
	})
}

// A restarted primary keeps the entries an earlier run wrote, and
// continues the window of a database it uploads again.
func TestSeedsAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		earlier := newPublisherNoCleanup(s)
		upload(earlier, "a.db", 1, 1)
		upload(earlier, "a.db", 2, 3)
		upload(earlier, "b.db", 1, 7)
		synctest.Wait()
		if err := earlier.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		seq := stored(t, s.Store).Seq
		puts0, _ := s.counts()

		p := newPublisher(t, s, nil)
		upload(p, "a.db", 4, 4)
		synctest.Wait()
		rec := stored(t, s.Store)
		if got, want := rec.DBs["a.db"].Files, []head.File{{0, 1, 1, 100}, {0, 2, 3, 200}, {0, 4, 4, 100}}; !slices.Equal(got, want) {
			t.Errorf("a.db files: %+v, want %+v", got, want)
		}
		if got := rec.DBs["b.db"]; got.TXID != 7 {
			t.Errorf("b.db: %+v, want the earlier run's entry", got)
		}
		if rec.Seq != seq+1 {
			t.Errorf("seq %d, want %d", rec.Seq, seq+1)
		}
		if puts, _ := s.counts(); puts != puts0+1 {
			t.Errorf("%d PUTs for one upload, want 1: the seed gave the ETag", puts-puts0)
		}
	})
}

func newPublisherNoCleanup(cw s3backend.ConditionalWriter) *head.Publisher {
	p := head.NewPublisher(head.Options{Store: cw, Writer: "earlier"})
	p.Start(context.Background())
	return p
}

// A deleted database becomes a tombstone, and a merge does not bring it back.
func TestRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil)
		upload(p, "a.db", 1, 1)
		upload(p, "b.db", 1, 1)
		synctest.Wait()
		puts0, _ := s.counts()
		p.Removed("never-uploaded.db")
		synctest.Wait()
		if puts, _ := s.counts(); puts != puts0 {
			t.Errorf("removing a database the record lacks sent %d PUTs", puts-puts0)
		}

		// Another writer slips in a version that still has a.db.
		body, etag, err := s.Store.Get(t.Context(), head.Key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := head.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		rec.Seq++
		rec.DBs["c.db"] = head.DB{TXID: 3, Files: []head.File{{Level: 0, Min: 3, Max: 3, Size: 1}}}
		if _, err := s.Store.PutIfMatch(t.Context(), head.Key, mustMarshal(t, rec), etag); err != nil {
			t.Fatal(err)
		}
		p.Removed("a.db")
		synctest.Wait()
		got := stored(t, s.Store)
		if e, ok := got.DBs["a.db"]; !ok || !e.Deleted || e.TXID != 1 || len(e.Files) != 0 {
			t.Errorf("a.db is not a tombstone at TXID 1: %+v", e)
		}
		if _, ok := got.DBs["b.db"]; !ok {
			t.Error("b.db left the record")
		}
		if _, ok := got.DBs["c.db"]; !ok {
			t.Error("the other writer's c.db was not merged")
		}
		// Created again: back in the record, from its new snapshot on.
		p.Uploaded("a.db", s3backend.FileInfo{DB: "a.db", Level: s3backend.LevelSnapshot, MinTXID: 1, MaxTXID: 5, Size: 4096}, 5, 1, commitTime)
		synctest.Wait()
		if got := stored(t, s.Store).DBs["a.db"]; got.TXID != 5 || len(got.Files) != 1 || got.Files[0].Level != s3backend.LevelSnapshot {
			t.Errorf("a.db created again: %+v", got)
		}
	})
}

// A database names its newest MaxFiles files, oldest first.
func TestWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil)
		for i := uint64(1); i <= head.MaxFiles+8; i++ {
			upload(p, "a.db", i, i)
		}
		synctest.Wait()
		e := stored(t, s.Store).DBs["a.db"]
		if len(e.Files) != head.MaxFiles || e.Files[0].Min != 9 || e.Files[head.MaxFiles-1].Max != head.MaxFiles+8 {
			t.Fatalf("files %+v, want 9..%d", e.Files, head.MaxFiles+8)
		}
		if e.TXID != head.MaxFiles+8 {
			t.Errorf("txid %d", e.TXID)
		}
	})
}

// While the fence check fails nothing is published; the failure is counted
// and visible, and the publish goes out once the check passes again.
func TestFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		errFenced := errors.New("fenced (test)")
		var fenced atomic.Bool
		fenced.Store(true)
		check := func() error {
			if fenced.Load() {
				return errFenced
			}
			return nil
		}
		p := newPublisher(t, s, check)
		upload(p, "a.db", 1, 1)
		synctest.Wait()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if puts, _ := s.counts(); puts != 0 {
			t.Fatalf("%d PUTs while fenced, want 0", puts)
		}
		st := p.Status()
		if !errors.Is(st.LastErr, errFenced) || st.Errors == 0 || !st.Pending || st.FailingSince.IsZero() {
			t.Fatalf("status while fenced: %+v", st)
		}
		fenced.Store(false)
		time.Sleep(time.Minute) // the longest backoff passes
		synctest.Wait()
		if puts, _ := s.counts(); puts != 1 {
			t.Fatalf("%d PUTs after the fence lifted, want 1", puts)
		}
		if st := p.Status(); st.LastErr != nil || st.Pending || st.Publishes != 1 {
			t.Fatalf("status after: %+v", st)
		}
	})
}

// A failed PUT is retried with backoff, never dropped.
func TestRetriesFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		errDown := errors.New("store down (test)")
		s.setFail(errDown)
		p := newPublisher(t, s, nil)
		upload(p, "a.db", 1, 1)
		synctest.Wait()
		start := time.Now()
		time.Sleep(7*time.Second + time.Millisecond) // attempts at 0, 1, 3, 7 s
		synctest.Wait()
		st := p.Status()
		if st.Errors != 4 || !errors.Is(st.LastErr, errDown) || !st.FailingSince.Equal(start) {
			t.Fatalf("status after 7 s of failures: %+v, want 4 failures", st)
		}
		s.setFail(nil)
		time.Sleep(8 * time.Second)
		synctest.Wait()
		if st := p.Status(); st.Publishes != 1 || st.LastErr != nil || st.Pending {
			t.Fatalf("status after recovery: %+v", st)
		}
		if got := stored(t, s.Store).DBs["a.db"].TXID; got != 1 {
			t.Fatalf("txid %d", got)
		}
	})
}

// Close publishes what changed during the last PUT.
func TestCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := head.NewPublisher(head.Options{Store: s})
		p.Start(t.Context())
		release := s.holdPuts()
		upload(p, "a.db", 1, 1)
		<-s.entered
		upload(p, "b.db", 1, 1)
		closed := make(chan error)
		go func() { closed <- p.Close(context.Background()) }()
		synctest.Wait()
		release()
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, ok := stored(t, s.Store).DBs["b.db"]; !ok {
			t.Fatal("the change made during the last PUT was not published by Close")
		}
		if st := p.Status(); st.Pending {
			t.Fatalf("status after Close: %+v", st)
		}
	})
}

// Close gives up when its context ends, and says so.
func TestCloseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := head.NewPublisher(head.Options{Store: s})
		p.Start(t.Context())
		s.holdPuts() // never released
		upload(p, "a.db", 1, 1)
		<-s.entered
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Close(ctx); err == nil {
			t.Fatal("Close returned nil with the change unpublished")
		}
		if st := p.Status(); !st.Pending {
			t.Fatalf("status: %+v, want the change pending", st)
		}
	})
}

// A store without conditional writes stops publishing for good.
func TestStopsWithoutConditionalWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		s.setFail(fmt.Errorf("put: %w", s3backend.ErrConditionalUnsupported))
		p := newPublisher(t, s, nil)
		upload(p, "a.db", 1, 1)
		synctest.Wait()
		st := p.Status()
		if !errors.Is(st.Stopped, s3backend.ErrConditionalUnsupported) || st.Errors != 1 {
			t.Fatalf("status: %+v", st)
		}
		s.setFail(nil)
		upload(p, "a.db", 2, 2)
		time.Sleep(time.Hour)
		synctest.Wait()
		if puts, _ := s.counts(); puts != 0 {
			t.Fatalf("%d PUTs after stopping", puts)
		}
	})
}

// A record too large for a conditional object names fewer files per
// database.
func TestTrimsToFit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil)
		for i := range 1000 {
			db := fmt.Sprintf("tenant-%04d/app.db", i)
			for j := uint64(1); j <= head.MaxFiles; j++ {
				upload(p, db, 1_000_000+j, 1_000_000+j)
			}
		}
		synctest.Wait()
		body, _, err := s.Store.Get(t.Context(), head.Key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := head.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		e := rec.DBs["tenant-0000/app.db"]
		if len(body) > s3backend.MaxConditionalSize || len(rec.DBs) != 1000 || len(e.Files) == 0 || len(e.Files) >= head.MaxFiles {
			t.Fatalf("%d bytes, %d dbs, %d files each", len(body), len(rec.DBs), len(e.Files))
		}
		if e.Files[len(e.Files)-1].Max != e.TXID {
			t.Fatalf("trimmed the newest files: %+v", e)
		}
	})
}

// With MinGap, uploads that never pause cause one PUT per gap, not one per
// upload, and the last of them is published.
func TestMinGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := head.NewPublisher(head.Options{Store: s, Writer: "test-writer", MinGap: time.Second})
		p.Start(t.Context())
		defer p.Close(context.Background())
		upload(p, "a.db", 1, 1)
		synctest.Wait()
		if puts, _ := s.counts(); puts != 1 {
			t.Fatalf("%d PUTs after the first upload, want 1 (the first change goes out at once)", puts)
		}
		for i := range 50 { // 5 s of uploads, 10 a second
			time.Sleep(100 * time.Millisecond)
			upload(p, fmt.Sprintf("db%02d.db", i%7), uint64(i+1), uint64(i+1))
			upload(p, "a.db", uint64(i+2), uint64(i+2))
		}
		synctest.Wait()
		if puts, _ := s.counts(); puts < 5 || puts > 6 {
			t.Errorf("%d PUTs for 5 s of uploads with a 1 s gap, want 5 or 6", puts)
		}
		time.Sleep(time.Hour)
		if puts, _ := s.counts(); puts > 7 {
			t.Errorf("%d PUTs in all, want at most 7", puts)
		}
		if rec := stored(t, s.Store); rec.DBs["a.db"].TXID != 51 || len(rec.DBs) != 8 {
			t.Errorf("last record: a.db at %d, %d dbs; want 51 and 8", rec.DBs["a.db"].TXID, len(rec.DBs))
		}
		if st := p.Status(); st.Pending {
			t.Errorf("still pending after an idle hour: %+v", st)
		}
	})
}

// Databases too many for one record (even with one file each) make the
// head object the overflow marker, which followers take as "list the
// replica"; it stays, for this publisher and for the next one.
func TestOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		p := newPublisher(t, s, nil)
		upload(p, "first.db", 1, 1)
		synctest.Wait()
		const n = 9000 // about 150 bytes each with one file: more than 1 MiB
		release := s.holdPuts()
		for i := range n {
			upload(p, fmt.Sprintf("tenants/tenant-%05d/app.db", i), 1, 2)
		}
		release()
		synctest.Wait()
		body, _, err := s.Store.Get(t.Context(), head.Key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := head.Parse(body)
		if !errors.Is(err, head.ErrOverflow) || !errors.Is(err, head.ErrUnreadable) || !rec.Overflow || len(rec.DBs) != 0 {
			t.Fatalf("head object %.200s: parse %v, %+v; want the overflow marker (which followers take as unreadable)", body, err, rec)
		}
		if len(body) > 1000 {
			t.Errorf("the marker has %d bytes", len(body))
		}
		st := p.Status()
		if !st.Overflow || st.Pending || st.LastErr != nil {
			t.Errorf("status: %+v", st)
		}
		puts, _ := s.counts()
		upload(p, "first.db", 2, 2)
		time.Sleep(time.Hour)
		if again, _ := s.counts(); again != puts {
			t.Errorf("%d more PUTs after the marker", again-puts)
		}
		if st := p.Status(); st.Pending {
			t.Errorf("a change after the marker stays pending: %+v", st)
		}

		// The next primary finds the marker and keeps it.
		next := head.NewPublisher(head.Options{Store: s, Writer: "next"})
		next.Start(t.Context())
		defer next.Close(context.Background())
		upload(next, "first.db", 3, 3)
		time.Sleep(time.Hour)
		if again, _ := s.counts(); again != puts {
			t.Errorf("the next publisher replaced the marker (%d PUTs)", again-puts)
		}
		if st := next.Status(); !st.Overflow {
			t.Errorf("next publisher's status: %+v", st)
		}
	})
}
