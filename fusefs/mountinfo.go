package fusefs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	MountPoint string
	FsType     string
	Source     string
	Dev        string // "major:minor", decimal, as mountinfo prints it
}

// Mounts reads the mount table.
func Mounts() ([]MountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []MountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, MountEntry{
			MountPoint: unescape(fields[4]),
			FsType:     fields[sep+1],
			Source:     unescape(fields[sep+2]),
			Dev:        fields[2],
		})
	}
	return out, sc.Err()
}

// unescape decodes the octal escapes (\040 for space) of mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// IsMountPoint reports whether path is a mount point, and its entry.
func IsMountPoint(path string) (bool, MountEntry) {
	path = filepath.Clean(path)
	mounts, err := Mounts()
	if err != nil {
		return false, MountEntry{}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].MountPoint == path {
			return true, mounts[i]
		}
	}
	return false, MountEntry{}
}

// FindWalfs returns the data dir of the walfs mount at mountPoint.
func FindWalfs(mountPoint string) (dataDir string, err error) {
	ok, e := IsMountPoint(mountPoint)
	if !ok {
		return "", fmt.Errorf("%s is not a mount point (give the directory walfs mount was started on)", mountPoint)
	}
	if e.FsType != "fuse."+FsType && e.FsType != FsType {
		return "", fmt.Errorf("%s is a %s mount, not a walfs mount (give the directory walfs mount was started on; see mount -t fuse.walfs)", mountPoint, e.FsType)
	}
	return e.Source, nil
}
