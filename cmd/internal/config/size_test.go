package config

import (
	"flag"
	"io"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "5242880", want: 5242880},
		{in: "5MB", want: 5_000_000},
		{in: "5mb", want: 5_000_000},
		{in: "10MiB", want: 10 << 20},
		{in: "10mib", want: 10 << 20},
		{in: "1.5GB", want: 1_500_000_000},
		{in: "1.5KiB", want: 1536},
		{in: "64 KiB", want: 64 << 10},
		{in: " 7B ", want: 7},
		{in: "1kB", want: 1000},
		{in: "2TiB", want: 2 << 40},
		{in: "1PB", want: 1e15},
		{in: "+5MB", want: 5_000_000},
		{in: "-0", want: 0},
		{in: "007", want: 7},
		{in: "8EiB", wantErr: `invalid size "8EiB" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "9223372036854775808", wantErr: `size "9223372036854775808" is too large (the limit is 8EiB)`},
		{in: "8192PiB", wantErr: `size "8192PiB" is too large (the limit is 8EiB)`},
		{in: "", wantErr: "empty size (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)"},
		{in: "lots", wantErr: `invalid size "lots" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "MB", wantErr: `invalid size "MB" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "5XB", wantErr: `invalid size "5XB" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "5.MB", wantErr: `invalid size "5.MB" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: ".5MB", wantErr: `invalid size ".5MB" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "1e6", wantErr: `invalid size "1e6" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "0x10", wantErr: `invalid size "0x10" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "5_000", wantErr: `invalid size "5_000" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "--5", wantErr: `invalid size "--5" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "-5MB", wantErr: `size "-5MB" is negative (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "-1", wantErr: `size "-1" is negative (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "-lots", wantErr: `invalid size "-lots" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "1.5", wantErr: `size "1.5" is not a whole number of bytes (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "0.0001KB", wantErr: `size "0.0001KB" is not a whole number of bytes (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
		{in: "5M", wantErr: `size "5M" has an ambiguous unit (write 5MB for powers of 1000 or 5MiB for powers of 1024)`},
		{in: "1.5g", wantErr: `size "1.5g" has an ambiguous unit (write 1.5GB for powers of 1000 or 1.5GiB for powers of 1024)`},
		{in: "1" + string(make([]byte, 100)), wantErr: `invalid size "1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00…" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseSize(%q): got error %v, want %d", tt.in, err, tt.want)
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("ParseSize(%q): got %d, want %d", tt.in, got, tt.want)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("ParseSize(%q): got %d, %v\nwant error %s", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1500, "1500"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{5_000_000, "5MB"},
		{5 << 20, "5MiB"},
		{1_500_000_000, "1500MB"},
		{3 << 40, "3TiB"},
		{1<<63 - 1, "9223372036854775807"},
		{-5, "-5"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String(): got %q, want %q", int64(tt.in), got, tt.want)
		}
		if tt.in < 0 {
			continue
		}
		back, err := ParseSize(tt.in.String())
		if err != nil || Size(back) != tt.in {
			t.Errorf("ParseSize(%q): got %d, %v, want %d", tt.in.String(), back, err, int64(tt.in))
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "1s", want: time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "24h", want: 24 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: " 1.5s ", want: 1500 * time.Millisecond},
		{in: "-0s", want: 0},
		{in: "", wantErr: "empty duration (use a number with a unit, such as 500ms, 30s, 5m or 24h)"},
		{in: "-5s", wantErr: `duration "-5s" is negative (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "5", wantErr: `duration "5" has no unit (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "1.5", wantErr: `duration "1.5" has no unit (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "-5", wantErr: `duration "-5" has no unit (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "7d", wantErr: `invalid duration "7d" (there is no day unit; write 168h)`},
		{in: "1D", wantErr: `invalid duration "1D" (there is no day unit; write 24h)`},
		{in: "1.5d", wantErr: `invalid duration "1.5d" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "1s5", wantErr: `invalid duration "1s5" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "soon", wantErr: `invalid duration "soon" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "inf", wantErr: `invalid duration "inf" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "1 s", wantErr: `invalid duration "1 s" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
		{in: "9999999999h", wantErr: `invalid duration "9999999999h" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseDuration(%q): got error %v, want %v", tt.in, err, tt.want)
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("ParseDuration(%q): got %v, want %v", tt.in, got, tt.want)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("ParseDuration(%q): got %v, %v\nwant error %s", tt.in, got, err, tt.wantErr)
		}
	}
}

// TestFlagTextVar checks Size and Duration work as flag values, which is
// why ParseSize and ParseDuration are exported.
func TestFlagTextVar(t *testing.T) {
	fs := flag.NewFlagSet("walfs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var size Size
	var every Duration
	fs.TextVar(&size, "part-size", Size(5<<20), "")
	fs.TextVar(&every, "sync-interval", Duration(time.Second), "")
	if size != 5<<20 || every != Duration(time.Second) {
		t.Fatalf("defaults: got %v, %v", size, every)
	}
	if err := fs.Parse([]string{"-part-size", "16MiB", "-sync-interval", "250ms"}); err != nil {
		t.Fatal(err)
	}
	if size != 16<<20 || every != Duration(250*time.Millisecond) {
		t.Errorf("got %v, %v; want 16MiB, 250ms", size, every)
	}
	if err := fs.Parse([]string{"-part-size", "-1"}); err == nil {
		t.Error("negative size: got no error")
	}
	if err := fs.Parse([]string{"-sync-interval", "-1s"}); err == nil {
		t.Error("negative duration: got no error")
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{500 * time.Millisecond, "500ms"},
		{time.Second, "1s"},
		{10 * time.Minute, "10m"},
		{90 * time.Second, "1m30s"},
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
	}
	for _, tt := range tests {
		got := Duration(tt.in).String()
		if got != tt.want {
			t.Errorf("Duration(%v).String(): got %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParseDuration(got); err != nil || back != tt.in {
			t.Errorf("ParseDuration(%q): got %v, %v, want %v", got, back, err, tt.in)
		}
	}
}
