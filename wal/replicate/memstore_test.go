package replicate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// memStore is an in-memory s3backend.Store for tests.
type memStore struct {
	mu      sync.Mutex
	objects map[string]memObject
}

type memObject struct {
	info s3backend.FileInfo
	data []byte
}

var (
	_ s3backend.Store  = (*memStore)(nil)
	_ s3backend.Stater = (*memStore)(nil)
)

func newMemStore() *memStore { return &memStore{objects: map[string]memObject{}} }

func (s *memStore) Init(context.Context) error { return nil }
func (s *memStore) String() string             { return "mem://test" }

func (s *memStore) ListDatabases(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dbs []string
	for _, o := range s.objects {
		if !slices.Contains(dbs, o.info.DB) {
			dbs = append(dbs, o.info.DB)
		}
	}
	slices.Sort(dbs)
	return dbs, nil
}

func (s *memStore) List(_ context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []s3backend.FileInfo{}
	for _, o := range s.objects {
		if o.info.DB == db && o.info.Level == level {
			out = append(out, o.info)
		}
	}
	s3backend.SortFileInfos(out)
	return out, nil
}

func (s *memStore) Open(_ context.Context, info s3backend.FileInfo, off int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[s3backend.Key(info)]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", s3backend.Key(info), s3backend.ErrNotFound)
	}
	if off < 0 || off > int64(len(o.data)) {
		return nil, s3backend.ErrInvalidRange
	}
	return io.NopCloser(bytes.NewReader(o.data[off:])), nil
}

func (s *memStore) Stat(_ context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[s3backend.Key(info)]
	if !ok {
		return s3backend.FileInfo{}, fmt.Errorf("stat %s: %w", s3backend.Key(info), s3backend.ErrNotFound)
	}
	return o.info, nil
}

func (s *memStore) Write(_ context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	if err := s3backend.ValidateFileInfo(info); err != nil {
		return s3backend.FileInfo{}, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return s3backend.FileInfo{}, err
	}
	if int64(len(data)) != size {
		return s3backend.FileInfo{}, s3backend.ErrSizeMismatch
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now()
	}
	info.Size = size
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[s3backend.Key(info)] = memObject{info: info, data: data}
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
