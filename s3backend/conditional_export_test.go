package s3backend

import (
	"os"
	"testing"
)

// LockFileStoreRoot holds the lock the file store's conditional writes take,
// as another process would, until release is called.
func LockFileStoreRoot(t *testing.T, s *FileStore) (release func()) {
	t.Helper()
	d, err := os.Open(s.root)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := tryLockExclusive(d)
	if err != nil || !ok {
		d.Close()
		t.Fatalf("lock %s: locked=%v err=%v", s.root, ok, err)
	}
	return func() { d.Close() }
}
