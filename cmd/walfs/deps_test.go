package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyAdaptersImportTheirLibraries holds the module's dependency rules
// (STYLE: dependencies point inward): only fusefs imports go-fuse and only
// s3backend (or a package under it) imports the AWS SDK; cmd reaches them
// through those packages. The rules are on what a package's own code
// imports: test files may use the libraries (integration runs go-fuse's
// posixtest against a real mount).
func TestOnlyAdaptersImportTheirLibraries(t *testing.T) {
	rules := []struct {
		lib, owner string
	}{
		{"github.com/hanwen/go-fuse/", "github.com/walfs/walfs/fusefs"},
		{"github.com/aws/", "github.com/walfs/walfs/s3backend"},
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/walfs/walfs/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(pkgs) < 2 {
		t.Fatalf("go list listed %d packages:\n%s", len(pkgs), out)
	}
	seen := make([]bool, len(rules))
	for _, line := range pkgs {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			for i, r := range rules {
				if !strings.HasPrefix(imp, r.lib) {
					continue
				}
				seen[i] = true
				if pkg != r.owner && !strings.HasPrefix(pkg, r.owner+"/") {
					t.Errorf("%s imports %s: only %s may import %s", pkg, imp, r.owner, r.lib)
				}
			}
		}
	}
	// A rule that matches nothing would pass forever after a rename.
	for i, r := range rules {
		if !seen[i] {
			t.Errorf("no package imports %s: update the rule", r.lib)
		}
	}
}
