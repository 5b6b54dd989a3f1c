package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// memStore is an in-memory s3backend.Store with fault injection for tests.
type memStore struct {
	mu      sync.Mutex
	objects map[string]*memObject
	// breakAfter makes the next breaks[key] opens of key fail after
	// breakAfter bytes with a transient error.
	breaks     map[string]int
	breakAfter int64
	opens      map[string][]int64 // offsets passed to Open, by key
}

type memObject struct {
	info   s3backend.FileInfo // CreatedAt is the exact commit time
	listed time.Time          // what List reports (S3: upload time); zero = CreatedAt
	data   []byte
}

var _ s3backend.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{objects: map[string]*memObject{}, breaks: map[string]int{}, opens: map[string][]int64{}}
}

func (s *memStore) Init(context.Context) error { return nil }
func (s *memStore) String() string             { return "mem://test" }

func (s *memStore) ListDatabases(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, o := range s.objects {
		seen[o.info.DB] = true
	}
	dbs := make([]string, 0, len(seen))
	for db := range seen {
		dbs = append(dbs, db)
	}
	sort.Strings(dbs)
	return dbs, nil
}

func (s *memStore) List(_ context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []s3backend.FileInfo{}
	for _, o := range s.objects {
		if o.info.DB == db && o.info.Level == level {
			info := o.info
			if !o.listed.IsZero() {
				info.CreatedAt = o.listed
			}
			out = append(out, info)
		}
	}
	s3backend.SortFileInfos(out)
	return out, nil
}

func (s *memStore) Open(_ context.Context, info s3backend.FileInfo, off int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s3backend.Key(info)
	o, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, s3backend.ErrNotFound)
	}
	if off < 0 || off > int64(len(o.data)) {
		return nil, fmt.Errorf("open %s: %w", key, s3backend.ErrInvalidRange)
	}
	s.opens[key] = append(s.opens[key], off)
	var r io.Reader = bytes.NewReader(o.data[off:])
	if s.breaks[key] > 0 {
		s.breaks[key]--
		r = io.MultiReader(io.LimitReader(r, s.breakAfter), errReader{errors.New("connection reset by peer")})
	}
	return io.NopCloser(r), nil
}

func (s *memStore) Write(_ context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return s3backend.FileInfo{}, err
	}
	if int64(len(data)) != size {
		return s3backend.FileInfo{}, s3backend.ErrSizeMismatch
	}
	info.Size = size
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[s3backend.Key(info)] = &memObject{info: info, data: data}
	return info, nil
}

func (s *memStore) Delete(_ context.Context, infos []s3backend.FileInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, info := range infos {
		delete(s.objects, s3backend.Key(info))
	}
	return nil
}

// object returns the stored object for key; it panics when missing.
func (s *memStore) object(key string) *memObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		panic("no object " + key)
	}
	return o
}

// keys returns the stored keys, sorted.
func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// statStore is a memStore that also implements s3backend.Stater, like the
// S3 store: List reports upload times, Stat the exact commit time.
type statStore struct {
	*memStore
	stats int
}

func (s *statStore) Stat(_ context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	key := s3backend.Key(info)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats++
	o, ok := s.objects[key]
	if !ok {
		return s3backend.FileInfo{}, fmt.Errorf("stat %s: %w", key, s3backend.ErrNotFound)
	}
	return o.info, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// planKeys returns the keys of a plan's files, for comparisons.
func planKeys(p *Plan) string {
	keys := make([]string, len(p.Files))
	for i, f := range p.Files {
		keys[i] = s3backend.Key(f)
	}
	return strings.Join(keys, " ")
}
