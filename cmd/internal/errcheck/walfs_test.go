package errcheck

import "testing"

// checked are the packages on the capture and upload path, where a lost error
// is lost data (docs: STYLE.md, "Interfaces and errors").
var checked = []string{"./wal/...", "./fusefs"}

// TestNoDroppedErrors holds the rule in doc.go over the checked packages: any
// finding fails it. Handle the error, or mark a deliberate ignore where it
// happens, with its reason.
func TestNoDroppedErrors(t *testing.T) {
	found, err := Check("../../..", checked...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s\n\thandle the error, or mark a deliberate ignore with `%s <reason>` (cmd/internal/errcheck/doc.go)", f, Directive)
	}
}
