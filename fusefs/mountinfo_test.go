package fusefs

import (
	"fmt"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "/mnt/db", "/mnt/db"},
		{"empty", "", ""},
		{"space", `/mnt/my\040db`, "/mnt/my db"},
		{"tab and newline", `a\011b\012c`, "a\tb\nc"},
		{"backslash", `back\134slash`, `back\slash`},
		{"escaped backslash then digits", `\134040`, `\040`},
		{"escape then digit", `\0401`, " 1"},
		{"escape at the end", `x\040`, "x "},
		{"escape alone", `\040`, " "},
		{"high byte", `\377`, "\xff"},
		{"past a byte", `\400`, `\400`},
		{"too short", `x\04`, `x\04`},
		{"trailing backslash", `x\`, `x\`},
		{"not octal", `\08x`, `\08x`},
		{"not digits", `\abc`, `\abc`},
		{"sign", `\+12`, `\+12`},
		{"underscore", `\1_2`, `\1_2`},
	} {
		if got := unescape(tc.in); got != tc.want {
			t.Errorf("%s: unescape(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// mangle escapes s as the kernel writes mount points and sources into
// mountinfo (fs/seq_file.c mangle_path with " \t\n\\").
func mangle(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzUnescape: any bytes decode without panic to no more bytes than came
// in, and whatever the kernel escapes comes back as it was.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"/mnt/db", `/mnt/my\040db`, `\134040`, `x\04`, `\400`, `x\`, "a b\tc\nd\\e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescape(s); len(got) > len(s) {
			t.Errorf("unescape(%q) = %q: longer than its input", s, got)
		}
		if !strings.Contains(s, `\`) && unescape(s) != s {
			t.Errorf("unescape(%q) = %q: changed a string with no escapes", s, unescape(s))
		}
		if got := unescape(mangle(s)); got != s {
			t.Errorf("unescape(mangle(%q)) = %q", s, got)
		}
	})
}
