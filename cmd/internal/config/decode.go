package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decoder walks the YAML node tree by hand rather than unmarshalling into
// structs: that is what gives every error a line number, lets unknown keys
// get suggestions, and records which keys were set.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	cfg    *Config
	lines  map[string]int // dotted key → line, for errors about two keys
}

// parse is Parse with the environment as a parameter, so tests need not
// touch the process environment.
func parse(data []byte, source string, lookup func(string) (string, bool)) (*Config, error) {
	if source == "" {
		source = "config"
	}
	d := &decoder{
		file:   source,
		lookup: lookup,
		cfg:    &Config{Set: map[string]bool{}},
		lines:  map[string]int{},
	}
	root, err := d.document(data)
	if err != nil {
		return nil, err
	}
	if root != nil {
		if err := d.top(root); err != nil {
			return nil, err
		}
		if err := d.check(); err != nil {
			return nil, err
		}
	}
	return d.cfg, nil
}

func (d *decoder) errorf(line int, key string, sentinel error, format string, args ...any) error {
	return &Error{File: d.file, Line: line, Key: key, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

// document parses data and returns the root node, or nil for a file with no
// settings (empty, only comments, or a lone null).
func (d *decoder) document(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The YAML parser is outside code fed with outside bytes; a bug
		// there must surface as a config error, not crash the mount.
		if r := recover(); r != nil {
			root, err = nil, d.errorf(0, "", ErrSyntax, "invalid YAML: the parser gave up on this file (check indentation and quoting)")
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, d.syntaxError(err, data)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, d.syntaxError(err, data)
	default:
		return nil, d.errorf(extra.Line, "", ErrSyntax, `a second YAML document starts here (walfs reads one; remove the "---" line and what follows)`)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root = resolve(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, d.errorf(root.Line, "", ErrSyntax, `expected settings as "key: value" lines, such as "data-dir: /var/lib/walfs", found %s`, describe(root))
	}
	return root, nil
}

// top decodes the top-level mapping.
func (d *decoder) top(m *yaml.Node) error {
	return d.mapping(m, "", func(name, dotted string, k, v *yaml.Node) error {
		if name == "replica" || name == "replicas" {
			if d.cfg.Replica != nil {
				return d.errorf(k.Line, name, ErrInvalidValue, "set replica or replicas, not both (walfs replicates to one replica per mount)")
			}
			return d.replica(name, k, v)
		}
		f, ok := topFields[name]
		if !ok {
			return d.errorf(k.Line, dotted, ErrUnknownKey, "%s", unknownKey("", name))
		}
		return setField(d, f, dotted, k, v, d.cfg)
	})
}

// replica decodes "replica:" (a mapping) or "replicas:" (a list of exactly
// one mapping, as pasted from a Litestream config).
func (d *decoder) replica(name string, k, v *yaml.Node) error {
	v = resolve(v)
	if name == "replicas" {
		const empty = `replicas is empty (add one replica as "- url: s3://bucket/path", or remove the key)`
		switch {
		case isNull(v):
			return d.errorf(k.Line, name, ErrInvalidValue, "%s", empty)
		case v.Kind != yaml.SequenceNode:
			return d.errorf(v.Line, name, ErrInvalidValue, `replicas: expected a list of one replica ("- url: ..."), found %s (for a single block write "replica:")`, describe(v))
		case len(v.Content) == 0:
			return d.errorf(v.Line, name, ErrInvalidValue, "%s", empty)
		case len(v.Content) > 1:
			return d.errorf(lineOf(v.Content[1], v), name, ErrInvalidValue, "replicas lists %d entries, but walfs replicates to one replica per mount; remove extra entries", len(v.Content))
		}
		k, v = v, resolve(v.Content[0])
	}
	switch {
	case isNull(v):
		return d.errorf(lineOf(v, k), "replica", ErrInvalidValue, `replica is empty (indent "url: s3://bucket/path", or type, bucket and path, under it)`)
	case v.Kind != yaml.MappingNode:
		return d.errorf(v.Line, "replica", ErrInvalidValue, `replica: expected settings indented under it, such as "url: s3://bucket/path", found %s`, describe(v))
	}
	r := &Replica{}
	err := d.mapping(v, "replica.", func(name, dotted string, k, v *yaml.Node) error {
		f, ok := replicaFields[name]
		if !ok {
			return d.errorf(k.Line, dotted, ErrUnknownKey, "%s", unknownKey("replica.", name))
		}
		return setField(d, f, dotted, k, v, r)
	})
	if err != nil {
		return err
	}
	d.cfg.Replica = r
	d.cfg.Set["replica"] = true
	return nil
}

// mapping calls each for every key of m in file order, after checking the
// key is a plain name given once. prefix is "" or "replica.".
func (d *decoder) mapping(m *yaml.Node, prefix string, each func(name, dotted string, k, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			return d.errorf(k.Line, "", ErrSyntax, `keys must be plain names such as "data-dir", found %s`, describe(k))
		case k.ShortTag() == "!!merge":
			return d.errorf(k.Line, "", ErrSyntax, "merge keys (<<) are not supported (write the keys out in full)")
		}
		name := k.Value
		dotted := prefix + name
		if first, dup := seen[name]; dup {
			return d.errorf(k.Line, dotted, ErrSyntax, "%s is set twice (also on line %d; keep one)", quote(dotted), first)
		}
		seen[name] = k.Line
		if err := each(name, dotted, k, v); err != nil {
			return err
		}
	}
	return nil
}

// setField decodes one scalar value into dst and records the key as set.
func setField[T any](d *decoder, f field[T], dotted string, k, v *yaml.Node, dst *T) error {
	s, err := d.scalar(dotted, f.want, k, v)
	if err != nil {
		return err
	}
	if err := f.set(dst, s); err != nil {
		return d.errorf(lineOf(v, k), dotted, ErrInvalidValue, "%s: %v", dotted, err)
	}
	d.cfg.Set[dotted] = true
	d.lines[dotted] = k.Line
	return nil
}

// scalar returns the value of a key that takes a single value, with
// environment variables expanded. Its errors never contain the value.
func (d *decoder) scalar(dotted, want string, k, v *yaml.Node) (string, error) {
	use := v // for an alias, report the line where it is used
	v = resolve(v)
	switch {
	case isNull(v):
		return "", d.errorf(k.Line, dotted, ErrInvalidValue, "%s is empty (give %s, or delete the line)", dotted, want)
	case v.Kind != yaml.ScalarNode:
		return "", d.errorf(lineOf(use, k), dotted, ErrInvalidValue, "%s: expected %s, found %s", dotted, want, describe(v))
	case !strings.HasPrefix(v.ShortTag(), "!!"):
		// "secret: !x9f..." parses as a custom tag on an empty value; taking
		// "" would silently drop the secret. The tag is not echoed for the
		// same reason.
		return "", d.errorf(lineOf(v, k), dotted, ErrInvalidValue, `%s: the value starts with "!", which YAML reads as a tag (quote the value)`, dotted)
	}
	s, xerr := expand(v.Value, d.lookup)
	if xerr != nil {
		line := v.Line
		if v.Style&yaml.LiteralStyle != 0 {
			// A literal block's text starts on the line after the "|".
			line += 1 + strings.Count(v.Value[:xerr.off], "\n")
		}
		return "", d.errorf(lineOf(&yaml.Node{Line: line}, k), dotted, ErrUnsetVariable, "%s: %s", dotted, xerr.msg)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", d.errorf(lineOf(v, k), dotted, ErrInvalidValue, "%s: the value spans more than one line (write it on one line)", dotted)
	}
	return s, nil
}

// check looks for keys that contradict each other, once all are read.
func (d *decoder) check() error {
	r := d.cfg.Replica
	if r == nil || r.URL == "" {
		return nil
	}
	scheme, hasScheme := urlScheme(r.URL)
	if hasScheme && scheme != "s3" && scheme != "file" {
		return d.errorf(d.lines["replica.url"], "replica.url", ErrInvalidValue,
			"replica.url: unsupported scheme %s (walfs replicates to s3:// or file:// URLs)", quote(scheme+"://"))
	}
	for _, c := range []struct{ key, val string }{{"bucket", r.Bucket}, {"path", r.Path}} {
		if c.val != "" {
			return d.errorf(d.lines["replica."+c.key], "replica."+c.key, ErrInvalidValue,
				"replica.%s: set either url or %s, not both (the url already names the %s)", c.key, c.key, c.key)
		}
	}
	if hasScheme && r.Type != "" && r.Type != scheme {
		return d.errorf(d.lines["replica.type"], "replica.type", ErrInvalidValue,
			"replica.type: %s contradicts the %s:// url (remove type; the url sets it)", quote(r.Type), scheme)
	}
	return nil
}

// urlScheme returns the lower-cased scheme of "scheme://...", if any.
func urlScheme(u string) (string, bool) {
	i := strings.Index(u, "://")
	if i <= 0 {
		return "", false
	}
	s := u[:i]
	for j := 0; j < len(s); j++ {
		c := s[j]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// resolve follows aliases (*name) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// lineOf returns n's line, or fallback's when n has none.
func lineOf(n, fallback *yaml.Node) int {
	if n != nil && n.Line > 0 {
		return n.Line
	}
	if fallback != nil {
		return fallback.Line
	}
	return 0
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (indented keys)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "an alias"
}

// parserProblems are the yaml.v3 parser (not scanner) messages. For these
// yaml.v3 prints a 0-based line, or none for the first line, so the line
// must be shifted by one.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: mapping values are not
// allowed in this context") into an *Error with the right line and a hint.
func (d *decoder) syntaxError(err error, data []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, after
			}
		}
	}
	switch {
	case parserProblems[msg]:
		line++
	case line > 0:
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		line = lineContaining(data, "*"+name)
		// The name may be the tail of a secret written unquoted: "*abc".
		return d.errorf(line, "", ErrSyntax, `invalid YAML: a value starts with "*", which refers to an undefined anchor (quote values that start with *, & or !)`)
	case isReaderProblem(msg):
		line = badByteLine(data)
	case strings.Contains(msg, "anchor") || strings.Contains(msg, "alias") || strings.Contains(msg, "event") || strings.Contains(msg, "stream"):
		// Composer errors carry no position and none can be recovered.
	default:
		// Scanner errors omit the line only when it is the first.
		line = 1
	}
	if lines := lineCount(data); line > lines {
		// At end of input yaml.v3 points past the last line; the
		// problem is where the content stops.
		line = lineCount(bytes.TrimRight(data, " \t\r\n"))
	}
	msg = strings.Join(strings.Fields(msg), " ")
	hint := "check indentation and quoting"
	switch {
	case strings.Contains(msg, "tab") || (line > 0 && leadingTab(data, line)):
		hint = "indent with spaces; YAML does not allow tabs"
	case strings.Contains(msg, "cannot start any token"):
		hint = "quote values that start with @ or `"
	case isReaderProblem(msg):
		hint = "save the file as UTF-8 text"
	}
	return d.errorf(line, "", ErrSyntax, "invalid YAML: %s (%s)", msg, hint)
}

func isReaderProblem(msg string) bool {
	for _, s := range []string{"control characters", "UTF-8", "UTF-16", "Unicode", "input error"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// lineCount returns the number of lines in data; a final line without a
// line break counts.
func lineCount(data []byte) int {
	n := breaks(data)
	if len(data) > 0 && data[len(data)-1] != '\n' && data[len(data)-1] != '\r' {
		n++
	}
	return n
}

// breaks counts line breaks as YAML does: "\n", "\r\n" and a lone "\r".
func breaks(b []byte) int {
	n := 0
	for i, c := range b {
		if c == '\n' || (c == '\r' && (i+1 == len(b) || b[i+1] != '\n')) {
			n++
		}
	}
	return n
}

// lineContaining returns the 1-based line of the first occurrence of s, or 0.
func lineContaining(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 0
	}
	return 1 + breaks(data[:i])
}

// badByteLine returns the line of the first byte YAML refuses: invalid
// UTF-8 or a control character other than tab, CR and LF. 0 if none.
func badByteLine(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return 1 + breaks(data[:i])
		}
		i += size
	}
	return 0
}

// leadingTab reports whether line (1-based) is indented with a tab.
func leadingTab(data []byte, line int) bool {
	start := 0
	for n := 1; n < line; n++ {
		i := bytes.IndexAny(data[start:], "\r\n")
		if i < 0 {
			return false
		}
		start += i + 1
		if data[start-1] == '\r' && start < len(data) && data[start] == '\n' {
			start++
		}
	}
	l := data[start:]
	indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}
