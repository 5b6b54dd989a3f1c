package lease_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports holds the package's dependency rule (doc.go): the SDK stays
// behind s3backend; lease imports only the standard library and s3backend.
func TestImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, ".") && p != "github.com/walfs/walfs/s3backend" {
			t.Errorf("lease imports %s", p)
		}
	}
}
