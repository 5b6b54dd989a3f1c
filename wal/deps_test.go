package wal

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStdlibOnly holds the package's dependency rule: nothing outside the
// standard library (doc.go).
func TestStdlibOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		skipOrFail(t, "go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/walfs/walfs/wal" {
			t.Errorf("wal depends on %s", p)
		}
	}
}
