package memstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/walfs/walfs/s3backend"
)

// Op names a Store method, for faults and the call log.
type Op string

// The operations a Faulty store sees.
const (
	OpInit          Op = "Init"
	OpListDatabases Op = "ListDatabases"
	OpList          Op = "List"
	OpOpen          Op = "Open"
	OpStat          Op = "Stat"
	OpWrite         Op = "Write"
	OpDelete        Op = "Delete"
)

// Call is one call that reached a Faulty store.
type Call struct {
	Op    Op
	N     int                  // 1 for the first call of Op, 2 for the second, ...
	DB    string               // List; the info's DB for Open, Stat, Write
	Level int                  // List; the info's level for Open, Stat, Write
	Info  s3backend.FileInfo   // Open, Stat, Write (as passed in)
	Infos []s3backend.FileInfo // Delete
	Off   int64                // Open
}

// Key is the object key of c.Info ("" for calls without one).
func (c Call) Key() string {
	if c.Info == (s3backend.FileInfo{}) {
		return ""
	}
	return s3backend.Key(c.Info)
}

// Fault says which calls go wrong and how. A call matches when its Op is
// Op and Match (nil: any) returns true; the first Times matching calls
// (0: all of them) are hit.
type Fault struct {
	Op    Op
	Match func(Call) bool
	Times int

	// Err, when set, is returned instead of calling the store.
	Err error

	// ReadErr, for Open with Err unset: the call reaches the store, and
	// the reader it returns fails with ReadErr after ReadAfter bytes (a
	// connection reset mid-download).
	ReadErr   error
	ReadAfter int64

	// Then, with Err unset, runs after the call reached the store and
	// before its result is returned: for races such as an object deleted
	// between List and Open. It must not call the Faulty store it is
	// injected in (that would count as a call); call the inner store.
	Then func(Call)
}

// Faulty wraps a store, logs the calls that reach it and makes the ones
// the injected faults match go wrong. It is an s3backend.Stater: Stat fails
// with errors.ErrUnsupported when the inner store is not one. It does not
// forward s3backend.ConditionalWriter or s3backend.ChangeReader. Safe for
// concurrent use; faults can be injected and removed while calls run.
type Faulty struct {
	inner s3backend.Store

	mu     sync.Mutex
	faults []*injected
	calls  []Call
	counts map[Op]int
}

type injected struct {
	Fault
	hits int
}

var (
	_ s3backend.Store  = (*Faulty)(nil)
	_ s3backend.Stater = (*Faulty)(nil)
)

// Wrap returns inner with no faults injected yet.
func Wrap(inner s3backend.Store) *Faulty {
	return &Faulty{inner: inner, counts: map[Op]int{}}
}

// Inject adds f; remove takes it out again (idempotent). Faults are tried
// in the order they were injected; the first that hits a call decides it.
func (f *Faulty) Inject(flt Fault) (remove func()) {
	if flt.Op == "" {
		panic("memstore: Fault without Op")
	}
	in := &injected{Fault: flt}
	f.mu.Lock()
	f.faults = append(f.faults, in)
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.faults = slices.DeleteFunc(f.faults, func(x *injected) bool { return x == in })
	}
}

// Calls returns the calls of op so far, in order.
func (f *Faulty) Calls(op Op) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// Unwrap returns the inner store.
func (f *Faulty) Unwrap() s3backend.Store { return f.inner }

// String describes the inner store.
func (f *Faulty) String() string { return "faulty " + f.inner.String() }

// begin logs c and returns the fault that hits it, if any.
func (f *Faulty) begin(c Call) (Call, *Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[c.Op]++
	c.N = f.counts[c.Op]
	f.calls = append(f.calls, c)
	for _, in := range f.faults {
		if in.Op != c.Op || (in.Times > 0 && in.hits >= in.Times) {
			continue
		}
		if in.Match != nil && !in.Match(c) {
			continue
		}
		in.hits++
		flt := in.Fault
		return c, &flt
	}
	return c, nil
}

func infoCall(op Op, info s3backend.FileInfo) Call {
	return Call{Op: op, DB: info.DB, Level: info.Level, Info: info}
}

// then runs flt.Then, if any, after the inner call.
func then(c Call, flt *Fault) {
	if flt != nil && flt.Then != nil {
		flt.Then(c)
	}
}

func failed(c Call, flt *Fault) error {
	if flt == nil || flt.Err == nil {
		return nil
	}
	verb := strings.ToLower(string(c.Op))
	if k := c.Key(); k != "" {
		return fmt.Errorf("%s %s: %w", verb, k, flt.Err)
	}
	return fmt.Errorf("%s: %w", verb, flt.Err)
}

// Init calls through unless a fault hits.
func (f *Faulty) Init(ctx context.Context) error {
	c, flt := f.begin(Call{Op: OpInit})
	if err := failed(c, flt); err != nil {
		return err
	}
	err := f.inner.Init(ctx)
	then(c, flt)
	return err
}

// ListDatabases calls through unless a fault hits.
func (f *Faulty) ListDatabases(ctx context.Context) ([]string, error) {
	c, flt := f.begin(Call{Op: OpListDatabases})
	if err := failed(c, flt); err != nil {
		return nil, err
	}
	dbs, err := f.inner.ListDatabases(ctx)
	then(c, flt)
	return dbs, err
}

// List calls through unless a fault hits.
func (f *Faulty) List(ctx context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	c, flt := f.begin(Call{Op: OpList, DB: db, Level: level})
	if err := failed(c, flt); err != nil {
		return nil, err
	}
	infos, err := f.inner.List(ctx, db, level)
	then(c, flt)
	return infos, err
}

// Open calls through unless a fault hits; a fault with ReadErr breaks the
// returned reader.
func (f *Faulty) Open(ctx context.Context, info s3backend.FileInfo, off int64) (io.ReadCloser, error) {
	oc := infoCall(OpOpen, info)
	oc.Off = off
	c, flt := f.begin(oc)
	if err := failed(c, flt); err != nil {
		return nil, err
	}
	rc, err := f.inner.Open(ctx, info, off)
	if err == nil && flt != nil && flt.ReadErr != nil {
		rc = &brokenReader{Reader: io.MultiReader(io.LimitReader(rc, flt.ReadAfter), errReader{flt.ReadErr}), Closer: rc}
	}
	then(c, flt)
	return rc, err
}

// Stat calls through unless a fault hits.
func (f *Faulty) Stat(ctx context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	c, flt := f.begin(infoCall(OpStat, info))
	if err := failed(c, flt); err != nil {
		return s3backend.FileInfo{}, err
	}
	st, ok := f.inner.(s3backend.Stater)
	if !ok {
		return s3backend.FileInfo{}, fmt.Errorf("stat %s: %T is no s3backend.Stater: %w", s3backend.Key(info), f.inner, errors.ErrUnsupported)
	}
	fi, err := st.Stat(ctx, info)
	then(c, flt)
	return fi, err
}

// Write calls through unless a fault hits.
func (f *Faulty) Write(ctx context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	c, flt := f.begin(infoCall(OpWrite, info))
	if err := failed(c, flt); err != nil {
		return s3backend.FileInfo{}, err
	}
	fi, err := f.inner.Write(ctx, info, r, size)
	then(c, flt)
	return fi, err
}

// Delete calls through unless a fault hits.
func (f *Faulty) Delete(ctx context.Context, infos []s3backend.FileInfo) error {
	c, flt := f.begin(Call{Op: OpDelete, Infos: slices.Clone(infos)})
	if err := failed(c, flt); err != nil {
		return err
	}
	err := f.inner.Delete(ctx, infos)
	then(c, flt)
	return err
}

type brokenReader struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// ListOnly hides every optional interface of s (s3backend.Stater,
// s3backend.ConditionalWriter, s3backend.ChangeReader): a store like those that cannot read an
// object's commit time without downloading it, for the code paths that
// handle them.
func ListOnly(s s3backend.Store) s3backend.Store { return listOnly{s} }

type listOnly struct{ s3backend.Store }
