package replicate

import (
	"fmt"
	"io"
	"os"

	"github.com/walfs/walfs/wal"
)

// txnList collects the transactions a fresh capture emits.
type txnList struct{ txns []*wal.Txn }

func (l *txnList) Commit(txn *wal.Txn, _ io.ReaderAt) error {
	l.txns = append(l.txns, txn)
	return nil
}

// replayWAL is what a restart does when the WAL is ahead of the replica
// position pos (walfs died after SQLite committed, before the spool had the
// transaction): instead of a snapshot of the whole database, it finds the
// point in the WAL where the database checksum equals pos and spools the
// transactions after it. It reports false, having changed nothing, when no
// such point exists (the WAL was restarted since, or a checkpoint copied
// later pages into the db file): the caller then writes a snapshot.
// Caller holds d.mu.
func (d *DB) replayWAL(f *os.File, pos Pos) (bool, error) {
	if f == nil || d.txid != pos.TXID {
		return false, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat wal of %s: %w", d.rel, err)
	}
	var list txnList
	if err := wal.NewCapture(&list).Poll(f, fi.Size()); err != nil {
		return false, fmt.Errorf("read wal of %s: %w", d.rel, err)
	}
	if len(list.txns) == 0 {
		return false, nil
	}
	// Pass 1: the last point whose checksum is pos (identical states give
	// identical results, so the last is as good as any and spools least).
	match := -1
	err = d.walkWAL(f, list.txns, len(list.txns), func(i int, sums *pageSums) {
		if sums.checksum() == pos.Checksum {
			match = i
		}
	})
	if err != nil || match < 0 {
		return false, err
	}
	// Pass 2: the page checksums at that point, then spool the rest.
	var at *pageSums
	if err := d.walkWAL(f, list.txns, match, func(i int, sums *pageSums) { at = sums }); err != nil {
		return false, err
	}
	d.sums, d.needSnap = at, false
	rest := list.txns[match:]
	for _, txn := range rest {
		if err := d.commit(txn, f); err != nil {
			return false, err
		}
	}
	d.log.Info("wal ahead of the replica: spooled its transactions instead of a snapshot", "from_txid", pos.TXID+1, "transactions", len(rest))
	return true, nil
}

// walkWAL starts from the database file alone and applies txns[:n] in order,
// calling visit after each (i = how many are applied, 0 for the file alone).
func (d *DB) walkWAL(f io.ReaderAt, txns []*wal.Txn, n int, visit func(i int, sums *pageSums)) error {
	sums, err := d.computeSums(nil, nil)
	if err != nil {
		return err
	}
	if sums == nil {
		sums = newPageSums(txns[0].PageSize)
	}
	if sums.pageSize != txns[0].PageSize {
		return nil // page size changed: not a state this WAL continues
	}
	visit(0, sums)
	buf := getPage(sums.pageSize)
	defer putPage(buf)
	for i, txn := range txns[:n] {
		sums.truncate(txn.Commit)
		for _, p := range txn.Pages {
			if _, err := f.ReadAt(buf, p.Offset); err != nil {
				return fmt.Errorf("read page %d from wal: %w", p.Pgno, err)
			}
			sums.set(p.Pgno, buf)
		}
		visit(i+1, sums)
	}
	return nil
}
