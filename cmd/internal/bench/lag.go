package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// LagResult is the commit-to-store latency distribution of one run.
type LagResult struct {
	Name    string  `json:"name"`
	Commits int     `json:"probes"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	Maxms   float64 `json:"max_ms"`
}

// Lag measures how long committed transactions take to appear in the store.
// The database at dir/name is written by one connection only. every > 1
// makes every every-th commit a probe while the others are load; gap spaces
// probes out (sparse), and comes before the first one too.
// flush must make the store hold everything committed so far.
//
// Which TXID holds a probe: with probes spaced out and no load, walfs
// captures each commit on its own, so the k-th commit after base has TXID
// base+k. Under load walfs gives one TXID to the commits it reads from the
// WAL together, so Lag asks captured (walfs's local TXID of db) right after
// the probe commits and waits for the TXID after it: the probe is in it or
// in an earlier one, so the figure errs long by at most one capture pass.
func Lag(ctx context.Context, name, dir string, st s3backend.Store, db string, probes, every int, gap time.Duration, flush func() error, captured func() (uint64, error)) (LagResult, error) {
	if every > 1 && captured == nil {
		return LagResult{}, fmt.Errorf("lag under load needs the mount's local TXID")
	}
	path, err := fresh(dir, filepath.Base(db))
	if err != nil {
		return LagResult{}, err
	}
	conn, err := open(path, "WAL", "NORMAL")
	if err != nil {
		return LagResult{}, err
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	if _, err := conn.Exec("create table t(id integer primary key, v blob)"); err != nil {
		return LagResult{}, err
	}
	if err := flush(); err != nil {
		return LagResult{}, err
	}
	base, err := maxTXID(ctx, st, db)
	if err != nil {
		return LagResult{}, err
	}

	type probe struct {
		txid uint64
		at   time.Time
	}
	var (
		mu      sync.Mutex
		pending []probe
		lags    []time.Duration
	)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	pollErr := make(chan error, 1)
	go func() {
		defer close(pollErr)
		for pollCtx.Err() == nil {
			top, err := maxTXID(pollCtx, st, db)
			if err != nil {
				if pollCtx.Err() == nil {
					pollErr <- err
				}
				return
			}
			now := time.Now()
			mu.Lock()
			for len(pending) > 0 && pending[0].txid <= top {
				lags = append(lags, now.Sub(pending[0].at))
				pending = pending[1:]
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()

	payload := make([]byte, 100)
	txid := base
	for i := 0; i < probes*every; i++ {
		if gap > 0 && i%every == 0 {
			// Before the first probe too: the flush above just uploaded,
			// and a commit right after an upload is not a sparse one.
			time.Sleep(gap)
		}
		if _, err := conn.ExecContext(ctx, "insert into t(v) values (?)", payload); err != nil {
			return LagResult{}, err
		}
		txid++
		if (i+1)%every == 0 {
			at := time.Now()
			if every > 1 {
				local, err := captured()
				if err != nil {
					return LagResult{}, err
				}
				txid = local + 1
			}
			mu.Lock()
			pending = append(pending, probe{txid: txid, at: at})
			mu.Unlock()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return LagResult{}, fmt.Errorf("%d probe commits did not reach the store within 30s", left)
		}
		if every > 1 {
			// Load goes on until the last probe is in: its TXID is the one
			// after walfs's local TXID, which a later commit makes.
			if _, err := conn.ExecContext(ctx, "insert into t(v) values (?)", payload); err != nil {
				return LagResult{}, err
			}
		}
		select {
		case err := <-pollErr:
			if err != nil {
				return LagResult{}, err
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopPoll()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return LagResult{
		Name: name, Commits: len(lags),
		P50ms: ms(lags[len(lags)/2]), P99ms: ms(lags[(len(lags)*99)/100]), Maxms: ms(lags[len(lags)-1]),
	}, nil
}

// maxTXID is the newest TXID the store holds for db.
func maxTXID(ctx context.Context, st s3backend.Store, db string) (uint64, error) {
	var top uint64
	for _, lvl := range []int{s3backend.LevelL0, s3backend.LevelSnapshot} {
		infos, err := st.List(ctx, db, lvl)
		if err != nil {
			return 0, err
		}
		for _, fi := range infos {
			top = max(top, fi.MaxTXID)
		}
	}
	return top, nil
}
