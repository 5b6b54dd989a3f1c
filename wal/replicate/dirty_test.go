package replicate

import (
	"slices"
	"testing"
)

func TestDirtySetPages(t *testing.T) {
	var s dirtySet
	s.add(0, 100)        // page 1 of 4096
	s.add(4096*3+10, 1)  // page 4
	s.add(4096*9-1, 2)   // straddles pages 9 and 10
	s.add(4096*100, 512) // page 101, past the end below
	if got, want := s.pages(4096, 50), []uint32{1, 4, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("pages(4096) = %v, want %v", got, want)
	}
	// The same writes seen with 1024-byte pages.
	if got, want := s.pages(1024, 1000), []uint32{1, 13, 36, 37, 401}; !slices.Equal(got, want) {
		t.Fatalf("pages(1024) = %v, want %v", got, want)
	}
	s.reset()
	if got := s.pages(4096, 50); len(got) != 0 {
		t.Fatalf("after reset: %v", got)
	}
}
