package restore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/superfly/ltx"
)

// checks is what verify found.
type checks struct {
	sum       ltx.Checksum // whole-database checksum
	integrity error        // from SQLite's integrity check
	sync      error        // from fsync

	sumTook, integrityTook, syncTook time.Duration
}

// verify checks the rebuilt database f (at path, nPages pages) and makes it
// durable: the whole-database checksum, SQLite's integrity check (unless
// check is IntegrityNone) and fsync. All three only read the file, so they
// run at once: the time after the last page is written is about that of the
// slowest, not the sum. The error is that of the checksum pass.
func verify(ctx context.Context, f *os.File, path string, pageSize, nPages uint32, check string) (checks, error) {
	var wg sync.WaitGroup
	var c checks
	var err error
	timed := func(d *time.Duration, fn func()) func() {
		return func() {
			start := time.Now()
			fn()
			*d = time.Since(start)
		}
	}
	wg.Go(timed(&c.sumTook, func() { c.sum, err = dbChecksum(f, pageSize, nPages) }))
	if check != IntegrityNone {
		wg.Go(timed(&c.integrityTook, func() { c.integrity = integrityCheck(ctx, path, check) }))
	}
	wg.Go(timed(&c.syncTook, func() { c.sync = f.Sync() }))
	wg.Wait()
	if err != nil {
		return c, fmt.Errorf("restore: checksum %s: %w", path, err)
	}
	return c, nil
}

// dbChecksum returns the LTX database checksum of the first nPages pages
// of r: ltx.ChecksumFlag OR the XOR of ltx.ChecksumPage over every page but
// the lock page (docs/format.md).
func dbChecksum(r io.ReaderAt, pageSize, nPages uint32) (ltx.Checksum, error) {
	return checksumPages(r, pageSize, nPages, ltx.LockPgno(pageSize))
}

// checksumPages is dbChecksum with the lock page given, so tests can place
// it inside a small database. XOR does not care about order, so the pages
// are split into one range per CPU, each read sequentially.
func checksumPages(r io.ReaderAt, pageSize, nPages, lockPgno uint32) (ltx.Checksum, error) {
	const minPagesPerWorker = 4096 // below ~16 MiB one reader is as fast
	return checksumSplit(r, pageSize, nPages, lockPgno, min(runtime.GOMAXPROCS(0), int(nPages/minPagesPerWorker)))
}

// checksumSplit is checksumPages over workers ranges read concurrently.
func checksumSplit(r io.ReaderAt, pageSize, nPages, lockPgno uint32, workers int) (ltx.Checksum, error) {
	workers = max(1, workers)
	sums := make([]ltx.Checksum, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		first := 1 + uint32(uint64(nPages)*uint64(w)/uint64(workers))
		last := uint32(uint64(nPages) * uint64(w+1) / uint64(workers))
		wg.Go(func() { sums[w], errs[w] = checksumRange(r, pageSize, first, last, lockPgno) })
	}
	wg.Wait()
	sum := ltx.ChecksumFlag
	for w := range workers {
		if errs[w] != nil {
			return 0, errs[w]
		}
		sum ^= sums[w]
	}
	return ltx.ChecksumFlag | sum, nil
}

// checksumRange returns the XOR of the page checksums of pages first..last.
func checksumRange(r io.ReaderAt, pageSize, first, last, lockPgno uint32) (ltx.Checksum, error) {
	off := int64(first-1) * int64(pageSize)
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, int64(last-first+1)*int64(pageSize)), 256<<10)
	h := ltx.NewHasher()
	data := make([]byte, pageSize)
	var sum ltx.Checksum
	for pgno := first; pgno <= last; pgno++ {
		if _, err := io.ReadFull(br, data); err != nil {
			return 0, fmt.Errorf("read page %d: %w", pgno, err)
		}
		if pgno != lockPgno {
			sum ^= ltx.ChecksumPageWithHasher(h, pgno, data)
		}
	}
	return sum, nil
}

// Checksum is the LTX database checksum (docs/format.md) of the first
// nPages pages of r.
func Checksum(r io.ReaderAt, pageSize, nPages uint32) (ltx.Checksum, error) {
	return dbChecksum(r, pageSize, nPages)
}
