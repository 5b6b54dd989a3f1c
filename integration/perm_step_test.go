package integration

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"syscall"
)

// permStep is one operation of the permission script, run by User. Setup
// is made of steps too (run by root), so both trees get it the same way and
// it is compared like the rest.
type permStep struct {
	User  string
	Op    string // an op of permop/main.go
	Path  string // relative to the tree root
	Path2 string // rename, link: the new path (relative); symlink: the target, verbatim
	Flags int    // open flags; rename: renameat2 flags
	Mode  uint32 // create/mkdir/mknod/chmod mode; access: R_OK|W_OK|X_OK
	UID   int    // chown: -1 leaves it
	GID   int
	Size  int64
	Dev   int
	Data  string
	Umask int
}

// do starts a step: user runs op on path, with umask 022.
func do(user, op, p string) permStep {
	return permStep{User: user, Op: op, Path: p, UID: -1, GID: -1, Umask: 0o022}
}

func (s permStep) to(p string) permStep          { s.Path2 = p; return s }
func (s permStep) flags(f int) permStep          { s.Flags = f; return s }
func (s permStep) mode(m uint32) permStep        { s.Mode = m; return s }
func (s permStep) owner(uid, gid int) permStep   { s.UID, s.GID = uid, gid; return s }
func (s permStep) size(n int64) permStep         { s.Size = n; return s }
func (s permStep) data(d string) permStep        { s.Data = d; return s }
func (s permStep) umask(m int) permStep          { s.Umask = m; return s }
func (s permStep) dev(major, minor int) permStep { s.Dev = major<<8 | minor; return s }

// request is the step for permop, with paths under root.
func (s permStep) request(root string) permRequest {
	r := permRequest{Op: s.Op, Path: path.Join(root, s.Path), Flags: s.Flags, Mode: s.Mode,
		UID: s.UID, GID: s.GID, Size: s.Size, Dev: s.Dev, Data: s.Data, Umask: s.Umask}
	switch s.Op {
	case "symlink":
		r.Path2 = s.Path2
	case "rename", "link":
		r.Path2 = path.Join(root, s.Path2)
	}
	return r
}

// touched lists the paths whose attributes the step may change: its
// operands and their directories. The tree root is left out: the mount's
// holds walfs's hidden state directory, so its link count differs.
func (s permStep) touched() []string {
	var ps []string
	add := func(p string) {
		if p != "" && p != "." && !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	add(s.Path)
	add(path.Dir(s.Path))
	if s.Op == "rename" || s.Op == "link" {
		add(s.Path2)
		add(path.Dir(s.Path2))
	}
	return ps
}

// creates reports whether the step may create a file, so its umask matters.
func (s permStep) creates() bool {
	switch s.Op {
	case "mkdir", "mknod", "mkfifo":
		return true
	case "open", "write":
		return s.Flags&syscall.O_CREAT != 0
	}
	return false
}

// String names the step by what it does; it is also the step's key in
// permKnownDifferences.
func (s permStep) String() string {
	parts := []string{s.User, s.Op, s.Path}
	switch s.Op {
	case "open", "write", "ftruncate":
		parts = append(parts, openFlagsString(s.Flags))
	case "rename":
		parts = append(parts, "->", s.Path2)
		if s.Flags != 0 {
			parts = append(parts, renameFlagsString(s.Flags))
		}
	case "link", "symlink":
		parts = append(parts, "->", s.Path2)
	case "access":
		parts = append(parts, accessString(s.Mode))
	case "chown", "lchown":
		parts = append(parts, fmt.Sprintf("%d:%d", s.UID, s.GID))
	case "chmod":
		parts = append(parts, fmt.Sprintf("%04o", s.Mode))
	}
	if s.creates() {
		parts = append(parts, fmt.Sprintf("mode=%06o umask=%03o", s.Mode, s.Umask))
	}
	if s.Op == "truncate" || s.Op == "ftruncate" {
		parts = append(parts, fmt.Sprintf("size=%d", s.Size))
	}
	if s.Op == "mknod" && s.Dev != 0 {
		parts = append(parts, fmt.Sprintf("dev=%d:%d", s.Dev>>8, s.Dev&0xff))
	}
	if s.Data != "" {
		parts = append(parts, fmt.Sprintf("data=%q", s.Data))
	}
	return strings.Join(parts, " ")
}

func openFlagsString(f int) string {
	acc := map[int]string{syscall.O_RDONLY: "O_RDONLY", syscall.O_WRONLY: "O_WRONLY", syscall.O_RDWR: "O_RDWR"}[f&syscall.O_ACCMODE]
	out := []string{acc}
	for _, b := range []struct {
		bit  int
		name string
	}{{syscall.O_CREAT, "O_CREAT"}, {syscall.O_EXCL, "O_EXCL"}, {syscall.O_TRUNC, "O_TRUNC"}, {syscall.O_APPEND, "O_APPEND"}, {syscall.O_NOFOLLOW, "O_NOFOLLOW"}, {syscall.O_DIRECTORY, "O_DIRECTORY"}} {
		if f&b.bit != 0 {
			out = append(out, b.name)
		}
	}
	return strings.Join(out, "|")
}

const (
	renameNoReplace = 1 // RENAME_NOREPLACE
	renameExchange  = 2 // RENAME_EXCHANGE
)

func renameFlagsString(f int) string {
	switch f {
	case renameNoReplace:
		return "RENAME_NOREPLACE"
	case renameExchange:
		return "RENAME_EXCHANGE"
	}
	return fmt.Sprintf("flags=%#x", f)
}

func accessString(m uint32) string {
	if m == 0 {
		return "F_OK"
	}
	var out []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{{4, "R_OK"}, {2, "W_OK"}, {1, "X_OK"}} {
		if m&b.bit != 0 {
			out = append(out, b.name)
		}
	}
	return strings.Join(out, "|")
}
