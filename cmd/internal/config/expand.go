package config

import (
	"fmt"
	"strings"
)

// expandError is a bad variable reference found by expand; the decoder adds
// the file and line.
type expandError struct {
	off int    // byte offset of the '$' in the input
	msg string // user-facing, names the variable but never a value
}

// expand replaces $VAR and ${VAR} with values from lookup. "$$" is a
// literal '$'; a '$' followed by anything that cannot start a name (a digit,
// a space, the end) is kept as written, so "pa$5word" needs no escaping.
// A variable set to "" expands to ""; an unset one is an error, because a
// silently empty secret or bucket only fails later and far from the cause.
// Defaults (${VAR:-x}) are not supported and are reported as such.
//
// The decoder expands each value after YAML parsing rather than the raw
// file before it. Line numbers are the file's either way, but this way a
// value from the environment is never read as YAML: a secret containing
// " #" is not cut short at a comment, one starting with * or ! is not an
// alias or a tag, and a $VAR in a commented-out line is not an error.
func expand(s string, lookup func(string) (string, bool)) (string, *expandError) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		var name string
		start, next := i, s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i += 2
			continue
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", &expandError{i, `"${" has no closing "}" (write ${NAME}, or $$ for a literal $)`}
			}
			name = s[i+2 : i+2+end]
			if !isName(name) {
				return "", &expandError{i, badName(name)}
			}
			i += 2 + end + 1
		case isNameStart(next):
			j := i + 2
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			name = s[i+1 : j]
			i = j
		default:
			b.WriteByte(c)
			i++
			continue
		}
		v, ok := lookup(name)
		if !ok {
			return "", &expandError{start, fmt.Sprintf("environment variable %s is not set (export it, or write $$ for a literal $)", name)}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// badName explains why the text between "${" and "}" is not a variable name.
func badName(name string) string {
	if name == "" {
		return `empty variable reference "${}" (write ${NAME}, or $$ for a literal $)`
	}
	// The text is not echoed: in a literal secret it would be part of it.
	if k := strings.IndexAny(name, ":-=?+"); k > 0 && isName(name[:k]) {
		return `shell default syntax such as "${NAME:-default}" is not supported (write ${NAME} and set the variable)`
	}
	return `invalid variable name in "${...}" (names are letters, digits and _, not starting with a digit; write $$ for a literal $)`
}

func isName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameByte(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }
