package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a non-negative time.Duration written in Go syntax: "1s",
// "500ms", "24h", "1h30m". It implements encoding.TextMarshaler and
// TextUnmarshaler, so it works with flag.TextVar.
type Duration time.Duration

// durationHint says what a valid duration looks like.
const durationHint = "use a number with a unit, such as 500ms, 30s, 5m or 24h"

// ParseDuration parses a non-negative duration in Go syntax ("1s", "500ms",
// "24h"). Bare numbers other than 0 are rejected (seconds or milliseconds?),
// and "7d" is rejected with the hours to write instead, because Go
// durations have no day unit and guessing one would differ from Litestream.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration (" + durationHint + ")")
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		whole, frac, rest := splitNumber(strings.TrimLeft(t, "+-"))
		switch {
		case whole+frac != "" && rest == "":
			return 0, fmt.Errorf("duration %s has no unit (%s)", quote(t), durationHint)
		case whole != "" && frac == "" && (rest == "d" || rest == "D") && len(whole) < 7:
			days, _ := strconv.Atoi(whole)
			return 0, fmt.Errorf("invalid duration %s (there is no day unit; write %dh)", quote(t), days*24)
		}
		return 0, fmt.Errorf("invalid duration %s (%s)", quote(t), durationHint)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %s is negative (%s)", quote(t), durationHint)
	}
	return d, nil
}

// String formats the duration as time.Duration does, without trailing
// zero units: "24h", "1h30m", "1m30s", "500ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
