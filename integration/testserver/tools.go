package testserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnvToolsDir overrides the cache root .ci/tools installs into; binaries
// live in its bin subdirectory.
const EnvToolsDir = "WALFS_TOOLS_DIR"

// EnvDisallowSkip, when "1", turns every would-be skip for a missing tool
// into a failure: in CI a skipped integration test is a failure.
const EnvDisallowSkip = "WALFS_TEST_DISALLOW_SKIP"

// InstallHint tells people how to get the binaries.
const InstallHint = "run .ci/tools from the repository root to install the pinned test servers (MinIO takes ~5 minutes the first time)"

// ToolsDir returns the directory that holds the pinned binaries:
// $WALFS_TOOLS_DIR/bin, else $XDG_CACHE_HOME/walfs-tools/bin, else
// ~/.cache/walfs-tools/bin (the same rule as .ci/tools).
func ToolsDir() string {
	if d := os.Getenv(EnvToolsDir); d != "" {
		return filepath.Join(d, "bin")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "walfs-tools", "bin")
}

// ToolsBin returns the tools bin directory. It skips the test when the
// directory does not exist (fails instead under WALFS_TEST_DISALLOW_SKIP=1).
func ToolsBin(t testing.TB) string {
	t.Helper()
	dir := ToolsDir()
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		skipOrFail(t, "test tools directory %q not found; %s", dir, InstallHint)
	}
	return dir
}

// Tool returns the path of one pinned binary, skipping (or failing, see
// ToolsBin) when it is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ToolsBin(t), name)
	if _, err := exec.LookPath(p); err != nil {
		skipOrFail(t, "%s not installed at %s; %s", name, p, InstallHint)
	}
	return p
}

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(EnvDisallowSkip) == "1" {
		t.Fatalf(format+" ("+EnvDisallowSkip+"=1 forbids skipping)", args...)
	}
	t.Skipf(format, args...)
}
