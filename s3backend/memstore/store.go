package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// Store is an in-memory replica store. The zero value is not usable; call
// New. Methods are safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	objects  map[string]object // by s3backend.Key
	cond     map[string]condObject
	etagSeq  uint64
	listTime func(s3backend.FileInfo) time.Time
}

type object struct {
	info s3backend.FileInfo // Size and CreatedAt as stored
	data []byte             // never modified once stored: readers share it
}

type condObject struct {
	body []byte
	etag string
}

var (
	_ s3backend.Store             = (*Store)(nil)
	_ s3backend.Stater            = (*Store)(nil)
	_ s3backend.ConditionalWriter = (*Store)(nil)
	_ s3backend.ChangeReader      = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{objects: map[string]object{}, cond: map[string]condObject{}}
}

// Init does nothing: memory is always reachable.
func (s *Store) Init(context.Context) error { return nil }

// String describes the store for logs.
func (s *Store) String() string { return "mem://" }

// SetListTime makes List report f(info) as each object's CreatedAt, the way
// S3 lists upload times, which trail (or, with a skewed server clock, lead)
// the commit times; Stat and Write still report the commit time. nil
// restores exact times.
func (s *Store) SetListTime(f func(info s3backend.FileInfo) time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listTime = f
}

// ListDatabases returns the sorted paths of every database with an object.
func (s *Store) ListDatabases(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dbs := []string{}
	for _, o := range s.objects {
		if !slices.Contains(dbs, o.info.DB) {
			dbs = append(dbs, o.info.DB)
		}
	}
	slices.Sort(dbs)
	return dbs, nil
}

// List returns the objects of db at level, sorted by TXID.
func (s *Store) List(_ context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	if err := s3backend.ValidateDB(db); err != nil {
		return nil, err
	}
	if err := s3backend.ValidateLevel(level); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []s3backend.FileInfo{}
	for _, o := range s.objects {
		if o.info.DB == db && o.info.Level == level {
			info := o.info
			if s.listTime != nil {
				info.CreatedAt = s.listTime(o.info)
			}
			out = append(out, info)
		}
	}
	s3backend.SortFileInfos(out)
	return out, nil
}

// Open returns the object's content from off on.
func (s *Store) Open(_ context.Context, info s3backend.FileInfo, off int64) (io.ReadCloser, error) {
	o, err := s.lookup("open", info)
	if err != nil {
		return nil, err
	}
	if off < 0 || off > int64(len(o.data)) {
		return nil, fmt.Errorf("open %s at %d: %w", s3backend.Key(info), off, s3backend.ErrInvalidRange)
	}
	return io.NopCloser(bytes.NewReader(o.data[off:])), nil
}

// Stat returns the stored info, with the exact commit time.
func (s *Store) Stat(_ context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	o, err := s.lookup("stat", info)
	if err != nil {
		return s3backend.FileInfo{}, err
	}
	return o.info, nil
}

func (s *Store) lookup(op string, info s3backend.FileInfo) (object, error) {
	if err := s3backend.ValidateFileInfo(info); err != nil {
		return object{}, fmt.Errorf("%s: %w", op, err)
	}
	key := s3backend.Key(info)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return object{}, fmt.Errorf("%s %s: %w", op, key, s3backend.ErrNotFound)
	}
	return o, nil
}

// Write stores exactly size bytes from r; on any error nothing changes.
// A zero CreatedAt is filled with the write time.
func (s *Store) Write(_ context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	if err := s3backend.ValidateFileInfo(info); err != nil {
		return s3backend.FileInfo{}, fmt.Errorf("write: %w", err)
	}
	key := s3backend.Key(info)
	// One byte more than size shows a reader that is too long.
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return s3backend.FileInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	if int64(len(data)) != size {
		return s3backend.FileInfo{}, fmt.Errorf("write %s: got %d bytes, want %d: %w", key, len(data), size, s3backend.ErrSizeMismatch)
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now()
	}
	info.Size = size
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = object{info: info, data: data}
	return info, nil
}

// Delete removes objects; missing ones are ignored.
func (s *Store) Delete(_ context.Context, infos []s3backend.FileInfo) error {
	for _, info := range infos {
		if err := s3backend.ValidateFileInfo(info); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, info := range infos {
		delete(s.objects, s3backend.Key(info))
	}
	return nil
}

// Keys returns the keys of every LTX object, sorted.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.objects))
	for k := range s.objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Rewrite replaces the content of the object named by info with what change
// makes of a copy of it, keeping its CreatedAt and setting its Size: damage
// done behind the back of whoever wrote it (bit rot, a truncated upload, a
// foreign writer). It returns an error matching s3backend.ErrNotFound when
// there is no such object.
func (s *Store) Rewrite(info s3backend.FileInfo, change func([]byte) []byte) error {
	key := s3backend.Key(info)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return fmt.Errorf("rewrite %s: %w", key, s3backend.ErrNotFound)
	}
	o.data = change(bytes.Clone(o.data))
	o.info.Size = int64(len(o.data))
	s.objects[key] = o
	return nil
}

// Get returns a conditional object's content and ETag.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	return s.GetIfNoneMatch(ctx, key, "")
}

// GetIfNoneMatch returns a conditional object's content and ETag unless its
// ETag is etag.
func (s *Store) GetIfNoneMatch(_ context.Context, key, etag string) ([]byte, string, error) {
	if err := s3backend.ValidateConditionalKey(key); err != nil {
		return nil, "", fmt.Errorf("get: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.cond[key]
	switch {
	case !ok:
		return nil, "", fmt.Errorf("get %s: %w", key, s3backend.ErrNotFound)
	case etag != "" && o.etag == etag:
		return nil, "", fmt.Errorf("get %s: %w", key, s3backend.ErrNotModified)
	}
	return bytes.Clone(o.body), o.etag, nil
}

// PutIfAbsent creates key unless it exists.
func (s *Store) PutIfAbsent(_ context.Context, key string, body []byte) (string, error) {
	if err := s3backend.ValidateConditionalKey(key); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cond[key]; ok {
		return "", fmt.Errorf("put %s if absent: %w", key, s3backend.ErrPreconditionFailed)
	}
	return s.putLocked(key, body), nil
}

// PutIfMatch replaces key if its current ETag is etag.
func (s *Store) PutIfMatch(_ context.Context, key string, body []byte, etag string) (string, error) {
	if err := s3backend.ValidateConditionalKey(key); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.cond[key]; !ok || o.etag != etag {
		return "", fmt.Errorf("put %s if match %s: %w", key, etag, s3backend.ErrPreconditionFailed)
	}
	return s.putLocked(key, body), nil
}

// putLocked stores body under a fresh ETag: a sequence number, so
// different content always gets a different ETag.
func (s *Store) putLocked(key string, body []byte) string {
	s.etagSeq++
	etag := `"` + strconv.FormatUint(s.etagSeq, 10) + `"`
	s.cond[key] = condObject{body: bytes.Clone(body), etag: etag}
	return etag
}

// DeleteKey removes a conditional object; a missing one is not an error.
func (s *Store) DeleteKey(_ context.Context, key string) error {
	if err := s3backend.ValidateConditionalKey(key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cond, key)
	return nil
}
