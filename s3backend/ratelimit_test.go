package s3backend

import (
	"context"
	"testing"
	"time"
)

func TestRateLimiterSpacesRequests(t *testing.T) {
	l := newRateLimiter(100) // 10ms apart
	t0 := time.Unix(1000, 0)
	var got []time.Duration
	for range 4 {
		got = append(got, l.reserve(t0).Sub(t0))
	}
	want := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots: got %v, want %v", got, want)
		}
	}
	// After an idle gap no burst credit accumulates beyond one request.
	later := t0.Add(time.Second)
	if a, b := l.reserve(later), l.reserve(later); !a.Equal(later) || b.Sub(later) != 10*time.Millisecond {
		t.Fatalf("after idle: got %v, %v", a.Sub(later), b.Sub(later))
	}
}

func TestRateLimiterNilAndCancel(t *testing.T) {
	if newRateLimiter(0) != nil {
		t.Fatal("rps 0 should mean no limiter")
	}
	var l *rateLimiter
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	l = newRateLimiter(0.001) // one request per ~17 minutes
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.wait(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := l.wait(ctx); err != context.Canceled {
		t.Fatalf("wait after cancel: got %v, want context.Canceled", err)
	}
}
