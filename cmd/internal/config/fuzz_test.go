package config

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// FuzzParse feeds arbitrary bytes to the parser. Seeds are the table-test
// inputs plus the corpus in testdata/fuzz/FuzzParse. Run it with
//
//	go test ./cmd/internal/config -run '^$' -fuzz FuzzParse -fuzztime 60s
//
// Besides not panicking, every result must keep the package's promises:
// one-line *Error with a sentinel and the file name, or a Config whose Set
// names only known keys and whose String does not depend on secret values.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullExample))
	for _, tt := range errorTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, "fuzz.yml", testEnv)
		if err != nil {
			checkFuzzError(t, data, err)
			return
		}
		if cfg == nil || cfg.Set == nil {
			t.Fatalf("got nil config or Set without an error")
		}
		if (cfg.Replica != nil) != cfg.Set["replica"] {
			t.Errorf("Replica is %v but Set[replica] is %v", cfg.Replica, cfg.Set["replica"])
		}
		for k := range cfg.Set {
			name, inReplica := strings.CutPrefix(k, "replica.")
			_, top := topFields[k]
			_, rep := replicaFields[name]
			if !(top || k == "replica" || inReplica && rep) {
				t.Errorf("Set has unknown key %q", k)
			}
		}
		s := cfg.String()
		if strings.ContainsAny(s, "\n\r") {
			t.Errorf("String is not one line: %q", s)
		}
		// String must come out the same whatever the secrets are.
		other := *cfg
		other.SecretAccessKey = swapSecret(cfg.SecretAccessKey)
		if cfg.Replica != nil {
			r := *cfg.Replica
			r.SecretAccessKey = swapSecret(r.SecretAccessKey)
			other.Replica = &r
		}
		if got := other.String(); got != s {
			t.Errorf("String depends on a secret value:\n%s\n%s", s, got)
		}
		again, err := parse(data, "fuzz.yml", testEnv)
		if err != nil || !reflect.DeepEqual(again, cfg) {
			t.Errorf("second parse differs: %v", err)
		}
	})
}

func checkFuzzError(t *testing.T, data []byte, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.HasPrefix(msg, "fuzz.yml:") && !strings.HasPrefix(msg, "config file fuzz.yml: ") {
		t.Errorf("error does not name the file: %s", msg)
	}
	// YAML also breaks lines at a lone CR, NEL, LS and PS, counted in the
	// text the parser reads: UTF-16 with a byte order mark is decoded.
	lines := 1
	for _, b := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		lines += strings.Count(yamlText(data), b)
	}
	if e.Line < 0 || e.Line > lines {
		t.Errorf("line %d is outside the %d-line input: %s", e.Line, lines, msg)
	}
	known := false
	for _, s := range []error{ErrSyntax, ErrUnknownKey, ErrInvalidValue, ErrUnsetVariable, ErrTooLarge} {
		known = known || errors.Is(err, s)
	}
	if !known {
		t.Errorf("error wraps no sentinel: %s", msg)
	}
	// $SECRET may be expanded into a non-secret key, whose value errors
	// quote; otherwise the secret must never show.
	if !strings.Contains(string(data), "SECRET") && strings.Contains(msg, testSecret) {
		t.Errorf("error leaks the secret: %s", msg)
	}
}

func swapSecret(s string) string {
	if s == "" {
		return ""
	}
	return "different-" + s
}

// yamlText is data as the YAML parser reads it: UTF-16 (after a byte order
// mark) decoded, anything else as it is.
func yamlText(data []byte) string {
	if len(data) < 2 {
		return string(data)
	}
	var order binary.ByteOrder
	switch {
	case data[0] == 0xff && data[1] == 0xfe:
		order = binary.LittleEndian
	case data[0] == 0xfe && data[1] == 0xff:
		order = binary.BigEndian
	default:
		return string(data)
	}
	units := make([]uint16, 0, len(data)/2)
	for i := 2; i+1 < len(data); i += 2 {
		units = append(units, order.Uint16(data[i:]))
	}
	return string(utf16.Decode(units))
}
