package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// DefaultKey is the lease object's key under the replica root. It never
// parses as an LTX key, so listings do not take it for a database.
const DefaultKey = ".walfs-lease.json"

// recordVersion is the format version of the lease record.
const recordVersion = 1

// Holder names a process holding (or having held) a lease.
type Holder struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Start time.Time `json:"start"` // when the holding walfs started
	// ID is random per Lease: it tells two holders with the same host and
	// pid apart (containers) and lets a holder recognise its own record.
	ID string `json:"id"`
	// BootID and PIDNamespace (Linux) identify the kernel and pid namespace
	// the pid belongs to, so a restarted walfs on the same machine can tell
	// that the holder's process is gone without waiting for the lease to
	// expire. Empty where unknown.
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_ns,omitempty"`
}

// String names the holder for people: "walfs pid 4242 on host web-1
// (started 2026-01-02T15:04:05Z)".
func (h Holder) String() string {
	return fmt.Sprintf("walfs pid %d on host %s (started %s)", h.PID, h.Host, h.Start.UTC().Format(time.RFC3339))
}

// Record is the content of the lease object (JSON).
type Record struct {
	Version int    `json:"version"`
	Holder  Holder `json:"holder"`
	TTLMs   int64  `json:"ttl_ms"`
	// Seq grows with every write of the record, by any holder, so no two
	// versions have the same bytes (the file store's ETag is a content hash).
	Seq      uint64    `json:"seq"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"` // holder's wall clock; see the package doc on clocks
	Released bool      `json:"released,omitempty"`
}

func (r Record) marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a struct of strings, ints and times always marshals
	}
	return append(b, '\n')
}

func parseRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, err
	}
	if r.Version != recordVersion {
		return Record{}, fmt.Errorf("lease record version %d, want %d (written by a newer walfs?)", r.Version, recordVersion)
	}
	if r.Holder.ID == "" || r.Expires.IsZero() {
		return Record{}, fmt.Errorf("lease record lacks holder id or expiry")
	}
	return r, nil
}

// CurrentHolder describes this process, started at start.
func CurrentHolder(start time.Time) Holder {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	boot, ns := processIdentity()
	return Holder{
		Host: host, PID: os.Getpid(), Start: start.UTC(), ID: hex.EncodeToString(id[:]),
		BootID: boot, PIDNamespace: ns,
	}
}

// Peek reads the lease record at key (DefaultKey when empty) without
// taking it: a follower uses it to tell when the primary's lease expired.
// A missing record is an error matching s3backend.ErrNotFound.
func Peek(ctx context.Context, cw s3backend.ConditionalWriter, key string) (Record, error) {
	if key == "" {
		key = DefaultKey
	}
	b, _, err := cw.Get(ctx, key)
	if err != nil {
		return Record{}, err
	}
	return parseRecord(b)
}

// Gone reports whether the record's holder can no longer write at now: it
// released the lease, the lease expired, or it names a process of this
// kernel that no longer runs.
func (r Record) Gone(now time.Time) bool {
	return r.Released || !now.Before(r.Expires) || holderGone(r.Holder)
}
