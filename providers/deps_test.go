package providers

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestStdlibOnly holds the line that providers imports only the standard
// library (STYLE: dependencies point inward).
func TestStdlibOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/walfs/walfs/providers" {
			t.Errorf("providers depends on non-stdlib package %s", dep)
		}
	}
}
