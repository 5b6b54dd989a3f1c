package errcheck

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	wantRe      = regexp.MustCompile(`// want (\w+) (\S+)$`)
	directiveRe = regexp.MustCompile(`^\s*` + Directive + `(\s.*)?$`)
)

// TestRule runs Check over testdata/fixture, which holds one example of
// every case the rule decides, and compares with the expectations written
// in it.
func TestRule(t *testing.T) {
	found, err := Check(".", "./testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	name := "testdata/fixture/fixture.go"
	want := map[string]bool{}
	f, err := os.Open(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if m := wantRe.FindStringSubmatch(text); m != nil {
			want[fmt.Sprintf("%d %s %s", line, m[1], m[2])] = true
		}
		if m := directiveRe.FindStringSubmatch(text); m != nil {
			if reason := strings.TrimSpace(m[1]); reason == "" || strings.HasPrefix(reason, "unused") {
				want[fmt.Sprintf("%d %s %s", line, KindDirective, Directive)] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, fd := range found {
		if fd.File != name {
			t.Errorf("finding in %s, want only %s: %s", fd.File, name, fd)
		}
		got[fmt.Sprintf("%d %s %s", fd.Pos.Line, fd.Kind, fd.Callee)] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing finding: line %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected finding: line %s", k)
		}
	}
	if len(want) < 20 {
		t.Errorf("fixture yields %d expectations; the parser of want comments is broken", len(want))
	}
}

// TestFindingNames checks how findings name their function and callee.
func TestFindingNames(t *testing.T) {
	found, err := Check(".", "./testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, f := range found {
		keys[f.File+" "+f.Func+" "+f.Callee] = true
	}
	for _, k := range []string{
		"testdata/fixture/fixture.go calls (*os.File).Close",
		"testdata/fixture/fixture.go deferField (*os.File).Close",
		"testdata/fixture/fixture.go deferLiteral os.Remove",
		"testdata/fixture/fixture.go  os.Remove", // package scope
	} {
		if !keys[k] {
			t.Errorf("no finding keyed %q", k)
		}
	}
}
