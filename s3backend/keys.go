package s3backend

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
)

// FormatFilename returns the LTX object name for a TXID range.
func FormatFilename(minTXID, maxTXID uint64) string {
	return fmt.Sprintf("%016x-%016x.ltx", minTXID, maxTXID)
}

// LevelDir returns "<db>/<level %04x>" (db may be empty).
func LevelDir(db string, level int) string {
	return path.Join(db, fmt.Sprintf("%04x", level))
}

// Key returns the object key of info relative to the replica root.
func Key(info FileInfo) string {
	return path.Join(LevelDir(info.DB, info.Level), FormatFilename(info.MinTXID, info.MaxTXID))
}

var keyRegexp = regexp.MustCompile(`^(?:(.*)/)?([0-9a-f]{4})/([0-9a-f]{16})-([0-9a-f]{16})\.ltx$`)

// ParseKey parses a key relative to the replica root into its database path,
// level and TXID range. ok is false for keys that are not LTX objects,
// including keys that Key would not produce (a leading slash, "//", "./").
func ParseKey(key string) (info FileInfo, ok bool) {
	m := keyRegexp.FindStringSubmatch(key)
	if m == nil {
		return FileInfo{}, false
	}
	level, _ := strconv.ParseUint(m[2], 16, 16)
	minTXID, _ := strconv.ParseUint(m[3], 16, 64)
	maxTXID, _ := strconv.ParseUint(m[4], 16, 64)
	if minTXID == 0 || minTXID > maxTXID {
		return FileInfo{}, false
	}
	info = FileInfo{DB: m[1], Level: int(level), MinTXID: minTXID, MaxTXID: maxTXID}
	if ValidateDB(info.DB) != nil || Key(info) != key {
		return FileInfo{}, false
	}
	return info, true
}
