package wal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMergePolls drives two Captures over the same WAL, one emitting each
// transaction and one merging what a Poll finds (MergePolls), through random
// streams of commits (growing, shrinking and regrowing the database, open
// transactions left for the next Poll, restarts after a Poll that caught
// up), and requires after every Poll that a replica built from each sink's
// transactions is the same image and that both indexes are what recovery
// finds. Merging must also emit fewer transactions.
func TestMergePolls(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		be := seed%2 == 0
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			const ps = 512
			rnd := rand.New(rand.NewPCG(seed, 7))
			f := &memFile{}
			w := newWALWriter(t, f, ps, be)
			each, merged := &recSink{}, &recSink{}
			ce, cm := NewCapture(each), NewCapture(merged)
			cm.MergePolls = true
			var imgE, imgM []byte
			appliedE, appliedM := 0, 0
			poll := func(when string) {
				t.Helper()
				for _, c := range []*Capture{ce, cm} {
					if err := c.Poll(f, f.Size()); err != nil {
						t.Fatalf("%s: poll: %v", when, err)
					}
				}
				for ; appliedE < len(each.txns); appliedE++ {
					imgE = apply(imgE, each.txns[appliedE])
				}
				for ; appliedM < len(merged.txns); appliedM++ {
					imgM = apply(imgM, merged.txns[appliedM])
				}
				if !bytes.Equal(imgE, imgM) {
					t.Fatalf("%s: merged replica differs from the per-transaction one (%d and %d bytes)", when, len(imgM), len(imgE))
				}
				_, want := refParse(f.b)
				diffIndex(t, when+" (merged)", cm.Committed(), want)
				diffIndex(t, when+" (each)", ce.Committed(), want)
			}
			page := func(pgno uint32, txn int) []byte {
				b := bytes.Repeat([]byte{byte(pgno), byte(txn), byte(seed)}, ps/3+1)
				return b[:ps]
			}
			w.header()
			size := uint32(0)
			txn := 0
			for round := 0; round < 30; round++ {
				for range 1 + rnd.IntN(6) { // commits between two polls
					txn++
					next := size
					switch r := rnd.IntN(10); {
					case r < 5 || size < 3:
						next = size + uint32(rnd.IntN(3))
					case r < 7:
						next = size - 1 - uint32(rnd.IntN(int(min(size-1, 3))))
					}
					next = max(next, 1)
					var pages []uint32
					for p := size + 1; p <= next; p++ { // new pages are written
						pages = append(pages, p)
					}
					for range 1 + rnd.IntN(3) {
						pages = append(pages, 1+uint32(rnd.IntN(int(next))))
					}
					for k, p := range pages {
						commit := uint32(0)
						if k == len(pages)-1 {
							commit = next
						}
						w.frame(p, commit, page(p, txn))
					}
					size = next
				}
				if rnd.IntN(4) == 0 { // an open transaction the poll must leave alone
					w.frame(1+uint32(rnd.IntN(int(size))), 0, page(1, -txn))
					poll(fmt.Sprintf("round %d, open txn", round))
					w.n-- // rolled back: the next frame overwrites it
					w.ck = w.storedCk(w.n)
				}
				poll(fmt.Sprintf("round %d", round))
				if rnd.IntN(8) == 0 { // checkpointed and restarted, after the poll caught up
					ce.Seal()
					cm.Seal()
					w.restart()
					poll(fmt.Sprintf("round %d, restart", round))
				}
			}
			if len(merged.txns) >= len(each.txns) {
				t.Fatalf("merging emitted %d transactions for %d commits", len(merged.txns), len(each.txns))
			}
		})
	}
}
