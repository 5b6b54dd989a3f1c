package config

import "testing"

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"bucket", "bucket", 0},
		{"bukcet", "bucket", 1},
		{"sync-intervall", "sync-interval", 1},
		{"regoin", "region", 1},
		{"endpiont", "endpoint", 1},
		{"kitten", "sitting", 3},
		{"ca", "abc", 3}, // OSA, not full Damerau: 2 would need editing a swapped pair
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNormalizeKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sync-interval", "sync-interval"},
		{"sync_interval", "sync-interval"},
		{"syncInterval", "sync-interval"},
		{"SyncInterval", "sync-interval"},
		{"SYNC_INTERVAL", "sync-interval"},
		{"accessKeyID", "access-key-id"},
		{"CAFile", "ca-file"},
		{"partSize2", "part-size2"},
	}
	for _, tt := range tests {
		if got := normalizeKey(tt.in); got != tt.want {
			t.Errorf("normalizeKey(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNearest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"durabilty", "durability"},
		{"typ", "type"},
		{"lease", "lease"},
		{"zzz", ""},
		{"sync", ""}, // too far from every key to be a typo
		{"mountpoint", "mount-point"},
	}
	for _, tt := range tests {
		if got := nearest(tt.in, append(append([]string{}, topKeys...), replicaKeys...)); got != tt.want {
			t.Errorf("nearest(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", `"abc"`},
		{"a\nb", `"a\nb"`},
		{"0123456789012345678901234567890123456789", `"0123456789012345678901234567890123456789"`},
		{"0123456789012345678901234567890123456789x", `"0123456789012345678901234567890123456789…"`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q): got %s, want %s", tt.in, got, tt.want)
		}
	}
}
