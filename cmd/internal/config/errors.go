package config

import (
	"errors"
	"strconv"
)

// Sentinel errors; every *Error from Parse wraps exactly one of them. Load
// errors about the file itself wrap the os error instead, so
// errors.Is(err, fs.ErrNotExist) works for a missing file.
var (
	// ErrSyntax means the file is not valid YAML or not shaped like a walfs
	// config (a list where settings belong, a key given twice, ...).
	ErrSyntax = errors.New("config syntax error")

	// ErrUnknownKey means a key walfs does not know; usually a typo.
	ErrUnknownKey = errors.New("unknown config key")

	// ErrInvalidValue means a known key with a value of the wrong type or
	// outside the allowed values, or two keys that contradict each other.
	ErrInvalidValue = errors.New("invalid config value")

	// ErrUnsetVariable means a $VAR or ${VAR} reference to an environment
	// variable that is not set, or a malformed reference.
	ErrUnsetVariable = errors.New("config variable not set")

	// ErrTooLarge means the file is bigger than any sane config file
	// (maxFileSize); usually --config points at the wrong file.
	ErrTooLarge = errors.New("config file too large")
)

// Error is a problem with a config file, in a form meant for the user.
// Error() is one line: "walfs.yml:3: <what is wrong> (<how to fix it>)", or
// "config file walfs.yml: <...>" when no line applies. It never contains a
// secret value.
type Error struct {
	File string // the file as the user named it
	Line int    // 1-based line, 0 when the problem has no line
	Key  string // dotted key the problem is about ("replica.part-size"), or ""
	Msg  string // what is wrong and how to fix it, without file and line
	Err  error  // a sentinel above, or the os error for an unreadable file
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return "config file " + e.File + ": " + e.Msg
}

// Unwrap returns the sentinel (or os error) so callers can use errors.Is.
func (e *Error) Unwrap() error { return e.Err }
