package instrument

import (
	"context"
	"io"

	"github.com/walfs/walfs/s3backend"
)

// Wrap returns a Store that forwards every call to inner and counts it in c.
// The result implements the optional interfaces of the real stores
// (s3backend.Stater, s3backend.ConditionalWriter, s3backend.ChangeReader,
// s3backend.Prober) when inner implements all four, and only Stater when
// inner implements that but not all four; the calls are counted too. For
// any other optional interface, type assert on Unwrap().
func Wrap(inner s3backend.Store, c *Counter) s3backend.Store {
	s := &store{inner: inner, c: c}
	st, stater := inner.(s3backend.Stater)
	cw, conditional := inner.(s3backend.ConditionalWriter)
	cr, changes := inner.(s3backend.ChangeReader)
	pr, prober := inner.(s3backend.Prober)
	switch {
	case stater && conditional && changes && prober:
		return &fullStore{staterStore: &staterStore{store: s, stater: st}, cw: cw, cr: cr, prober: pr}
	case stater:
		return &staterStore{store: s, stater: st}
	}
	return s
}

type store struct {
	inner s3backend.Store
	c     *Counter
}

var (
	_ s3backend.Store             = (*store)(nil)
	_ s3backend.Stater            = (*staterStore)(nil)
	_ s3backend.Stater            = (*fullStore)(nil)
	_ s3backend.ConditionalWriter = (*fullStore)(nil)
	_ s3backend.ChangeReader      = (*fullStore)(nil)
	_ s3backend.Prober            = (*fullStore)(nil)
)

// Unwrap returns the wrapped store, for code that needs an optional
// interface of the concrete store.
func (s *store) Unwrap() s3backend.Store { return s.inner }

func (s *store) String() string { return s.inner.String() }

func (s *store) Init(ctx context.Context) error {
	err := s.inner.Init(ctx)
	s.c.record(OpInit, err)
	return err
}

func (s *store) ListDatabases(ctx context.Context) ([]string, error) {
	dbs, err := s.inner.ListDatabases(ctx)
	s.c.record(OpListDatabases, err)
	return dbs, err
}

func (s *store) List(ctx context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	infos, err := s.inner.List(ctx, db, level)
	s.c.record(OpList, err, db)
	return infos, err
}

func (s *store) Open(ctx context.Context, info s3backend.FileInfo, off int64) (io.ReadCloser, error) {
	rc, err := s.inner.Open(ctx, info, off)
	s.c.record(OpGet, err, info.DB)
	return rc, err
}

func (s *store) Write(ctx context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	out, err := s.inner.Write(ctx, info, r, size)
	s.c.record(OpPut, err, info.DB)
	return out, err
}

func (s *store) Delete(ctx context.Context, infos []s3backend.FileInfo) error {
	err := s.inner.Delete(ctx, infos)
	dbs := make([]string, len(infos))
	for i, info := range infos {
		dbs[i] = info.DB
	}
	s.c.record(OpDelete, err, dbs...)
	return err
}

// staterStore is store over an inner store that implements Stat.
type staterStore struct {
	*store
	stater s3backend.Stater
}

func (s *staterStore) Stat(ctx context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	out, err := s.stater.Stat(ctx, info)
	s.c.record(OpStat, err, info.DB)
	return out, err
}

// fullStore also forwards conditional writes, polls and the probe.
type fullStore struct {
	*staterStore
	cw     s3backend.ConditionalWriter
	cr     s3backend.ChangeReader
	prober s3backend.Prober
}

// GetIfNoneMatch counts as a poll; an unchanged object is counted under
// KindNotModified, so the polls that found a change are the difference.
func (s *fullStore) GetIfNoneMatch(ctx context.Context, key, etag string) ([]byte, string, error) {
	body, newETag, err := s.cr.GetIfNoneMatch(ctx, key, etag)
	s.c.record(OpConditionalPoll, err)
	return body, newETag, err
}

func (s *fullStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	body, etag, err := s.cw.Get(ctx, key)
	s.c.record(OpConditionalGet, err)
	return body, etag, err
}

func (s *fullStore) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	etag, err := s.cw.PutIfAbsent(ctx, key, body)
	s.c.record(OpConditionalPut, err)
	return etag, err
}

func (s *fullStore) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	newETag, err := s.cw.PutIfMatch(ctx, key, body, etag)
	s.c.record(OpConditionalPut, err)
	return newETag, err
}

func (s *fullStore) DeleteKey(ctx context.Context, key string) error {
	err := s.cw.DeleteKey(ctx, key)
	s.c.record(OpConditionalDelete, err)
	return err
}

// Probe counts as one call, whatever requests it sends.
func (s *fullStore) Probe(ctx context.Context) (s3backend.ProbeResult, error) {
	res, err := s.prober.Probe(ctx)
	s.c.record(OpProbe, err)
	return res, err
}
