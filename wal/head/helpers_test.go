package head_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/head"
)

// ctrlStore is a memstore whose conditional calls a test can count, hold
// and fail.
type ctrlStore struct {
	*memstore.Store

	mu      sync.Mutex
	puts    int           // PutIfAbsent and PutIfMatch calls that reached the store
	gets    int           // Get calls
	polls   []string      // the ETag of every GetIfNoneMatch
	hold    chan struct{} // non-nil: PUTs wait until it is closed (or their context ends)
	entered chan struct{} // receives once per PUT that starts waiting on hold
	fail    error         // non-nil: PUTs fail with it, without reaching the store
}

func newCtrlStore() *ctrlStore {
	return &ctrlStore{Store: memstore.New(), entered: make(chan struct{}, 100)}
}

// holdPuts makes PUTs wait until the returned release is called.
func (c *ctrlStore) holdPuts() (release func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.hold = ch
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.hold = nil
		c.mu.Unlock()
		close(ch)
	}
}

func (c *ctrlStore) setFail(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

func (c *ctrlStore) counts() (puts, gets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts, c.gets
}

func (c *ctrlStore) beforePut(ctx context.Context) error {
	c.mu.Lock()
	hold, fail := c.hold, c.fail
	if fail == nil {
		c.puts++
	}
	c.mu.Unlock()
	if fail != nil {
		return fail
	}
	if hold != nil {
		c.entered <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *ctrlStore) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	if err := c.beforePut(ctx); err != nil {
		return "", err
	}
	return c.Store.PutIfAbsent(ctx, key, body)
}

func (c *ctrlStore) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	if err := c.beforePut(ctx); err != nil {
		return "", err
	}
	return c.Store.PutIfMatch(ctx, key, body, etag)
}

func (c *ctrlStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *ctrlStore) GetIfNoneMatch(ctx context.Context, key, etag string) ([]byte, string, error) {
	c.mu.Lock()
	c.polls = append(c.polls, etag)
	c.mu.Unlock()
	return c.Store.GetIfNoneMatch(ctx, key, etag)
}

// stored reads and parses the head object as a follower would.
func stored(t *testing.T, s *memstore.Store) head.Record {
	t.Helper()
	body, _, err := s.Get(t.Context(), head.Key)
	if err != nil {
		t.Fatalf("read head object: %v", err)
	}
	rec, err := head.Parse(body)
	if err != nil {
		t.Fatalf("parse head object %s: %v", body, err)
	}
	return rec
}

// commitTime is when the test's transactions commit: the bubble's clock.
var commitTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// l0 is the level-0 file of TXIDs a..b.
func l0(db string, a, b uint64) s3backend.FileInfo {
	return s3backend.FileInfo{DB: db, Level: s3backend.LevelL0, MinTXID: a, MaxTXID: b, Size: int64(100 * (b - a + 1)), CreatedAt: commitTime}
}

// upload tells p that the level-0 file of a..b of db was uploaded.
func upload(p *head.Publisher, db string, a, b uint64) {
	p.Uploaded(db, l0(db, a, b), b, ltx.Checksum(0x8000000000000000|b), commitTime)
}

func newPublisher(t *testing.T, cw s3backend.ConditionalWriter, check func() error) *head.Publisher {
	t.Helper()
	p := head.NewPublisher(head.Options{Store: cw, Writer: "test-writer", Check: check})
	p.Start(t.Context())
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func mustMarshal(t *testing.T, rec head.Record) []byte {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
