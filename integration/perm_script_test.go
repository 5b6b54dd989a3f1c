package integration

import (
	"fmt"
	"syscall"
)

// permScript is the list of steps both trees run.
type permScript []permStep

func (s *permScript) add(steps ...permStep) { *s = append(*s, steps...) }

// dir adds root's steps that make a directory of exactly mode and owner.
func (s *permScript) dir(p string, mode uint32, uid, gid int) {
	s.add(do("root", "mkdir", p).mode(mode).umask(0),
		do("root", "chown", p).owner(uid, gid),
		do("root", "chmod", p).mode(mode))
}

// file adds root's steps that make a six-byte file of exactly mode and
// owner (chmod last: chown clears set-id bits).
func (s *permScript) file(p string, mode uint32, uid, gid int) {
	s.add(do("root", "write", p).flags(syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL).mode(0o600).umask(0).data("hello\n"),
		do("root", "chown", p).owner(uid, gid),
		do("root", "chmod", p).mode(mode))
}

// eachUser adds f(user) for every user.
func (s *permScript) eachUser(f func(u string) []permStep) {
	for _, u := range permUsers {
		s.add(f(u.Name)...)
	}
}

// permFileOwners own the files of the systematic parts: root, A with the
// group A and B share (so B gets group permissions), and nobody.
var permFileOwners = []struct {
	name     string
	uid, gid int
}{{"root", 0, 0}, {"A", uidA, gidShared}, {"nobody", uidNobody, gidNobody}}

var permFileModes = []uint32{0o000, 0o400, 0o600, 0o640, 0o644, 0o666, 0o755}

var permOpenFlags = []int{
	syscall.O_RDONLY,
	syscall.O_WRONLY,
	syscall.O_RDWR,
	syscall.O_WRONLY | syscall.O_APPEND,
	syscall.O_WRONLY | syscall.O_TRUNC,
	syscall.O_RDONLY | syscall.O_TRUNC,
	syscall.O_RDWR | syscall.O_CREAT,
	syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL,
}

// buildPermScript is the whole differential script. Each part works in
// its own directory, so a difference in one part does not spill into the
// next.
func buildPermScript() permScript {
	var s permScript
	permOpenMatrix(&s)
	permCreateMatrix(&s)
	permSetgidDirs(&s)
	permSticky(&s)
	permRenames(&s)
	permRmdir(&s)
	permChmod(&s)
	permChown(&s)
	permTruncate(&s)
	permUtimes(&s)
	permTraversal(&s)
	permSetidWrites(&s)
	permLinks(&s)
	return s
}

// permOpenMatrix: every user opens files of every owner and mode with every
// open flag combination, and asks access(2) about them.
func permOpenMatrix(s *permScript) {
	s.dir("open", 0o755, 0, 0)
	var files []string
	for _, o := range permFileOwners {
		for _, m := range permFileModes {
			f := fmt.Sprintf("open/%s-%04o", o.name, m)
			s.file(f, m, o.uid, o.gid)
			files = append(files, f)
		}
	}
	for _, f := range files {
		s.eachUser(func(u string) []permStep {
			var steps []permStep
			for _, mask := range []uint32{4, 2, 1} {
				steps = append(steps, do(u, "access", f).mode(mask))
			}
			for _, fl := range permOpenFlags {
				steps = append(steps, do(u, "open", f).flags(fl).mode(0o644))
			}
			return steps
		})
	}
}

// permCreateMatrix: every user creates files, directories, nodes and
// symlinks with set-id and sticky bits under several umasks.
func permCreateMatrix(s *permScript) {
	s.dir("creat", 0o1777, 0, 0)
	s.eachUser(func(u string) []permStep {
		var steps []permStep
		for _, umask := range []int{0o022, 0o077, 0} {
			for _, m := range []uint32{0o644, 0o777, 0o4755, 0o2755, 0o1755, 0o6777} {
				f := fmt.Sprintf("creat/%s-f-%03o-%04o", u, umask, m)
				steps = append(steps, do(u, "open", f).flags(syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL).mode(m).umask(umask))
			}
		}
		for _, umask := range []int{0o022, 0} {
			for _, m := range []uint32{0o755, 0o700, 0o1777, 0o2755, 0o7777} {
				d := fmt.Sprintf("creat/%s-d-%03o-%04o", u, umask, m)
				steps = append(steps, do(u, "mkdir", d).mode(m).umask(umask))
			}
		}
		return append(steps,
			do(u, "mknod", "creat/"+u+"-reg").mode(syscall.S_IFREG|0o4755),
			do(u, "mknod", "creat/"+u+"-fifo").mode(syscall.S_IFIFO|0o666),
			do(u, "mknod", "creat/"+u+"-null").mode(syscall.S_IFCHR|0o666).dev(1, 3),
			do(u, "mkfifo", "creat/"+u+"-fifo2").mode(0o640),
			do(u, "symlink", "creat/"+u+"-sym").to("../elsewhere"),
			do(u, "readlink", "creat/"+u+"-sym"),
			do(u, "stat", "creat/"+u+"-reg"),
			// O_CREAT of an existing file keeps its mode and owner.
			do(u, "open", "creat/root-f-022-0644").flags(syscall.O_RDONLY|syscall.O_CREAT).mode(0o600),
		)
	})
}

// permSetgidDirs: files and directories created in setgid directories
// take the directory's group; subdirectories stay setgid; a creator outside
// the group loses the setgid bit it asks for on a file.
func permSetgidDirs(s *permScript) {
	s.dir("sgid", 0o755, 0, 0)
	s.dir("sgid/grp", 0o2775, 0, gidShared) // A and B may write, nobody not
	s.dir("sgid/all", 0o2777, 0, gidShared)
	s.dir("sgid/plain", 0o777, 0, gidShared)
	s.eachUser(func(u string) []permStep {
		return []permStep{
			do(u, "open", "sgid/grp/f-"+u).flags(syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL).mode(0o644),
			do(u, "mkdir", "sgid/grp/d-"+u).mode(0o755),
			do(u, "open", "sgid/all/f-"+u).flags(syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL).mode(0o2755),
			do(u, "open", "sgid/all/g-"+u).flags(syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL).mode(0o2745),
			do(u, "mkdir", "sgid/all/d-"+u).mode(0o755),
			do(u, "mkdir", "sgid/all/d-"+u+"/sub").mode(0o700),
			do(u, "mknod", "sgid/all/n-"+u).mode(syscall.S_IFREG | 0o2775),
			do(u, "mkfifo", "sgid/all/p-"+u).mode(0o2777),
			do(u, "symlink", "sgid/all/s-"+u).to("f-" + u),
			do(u, "open", "sgid/plain/f-"+u).flags(syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL).mode(0o2755),
			do(u, "mkdir", "sgid/plain/d-"+u).mode(0o2755),
			do(u, "stat", "sgid/all/d-"+u+"/sub"),
		}
	})
}

// permSticky: in sticky directories only the file's owner, the directory's
// owner and root may unlink or rename.
func permSticky(s *permScript) {
	s.dir("sticky", 0o755, 0, 0)
	s.dir("sticky/tmp", 0o1777, 0, 0)
	s.dir("sticky/a", 0o1777, uidA, gidA) // owned by A
	s.eachUser(func(u string) []permStep {
		var steps []permStep
		for _, d := range []string{"sticky/tmp/", "sticky/a/"} {
			steps = append(steps,
				do(u, "write", d+u).flags(syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL).mode(0o666).data("x"),
				do(u, "write", d+u+"2").flags(syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL).mode(0o666).data("y"),
				do(u, "mkdir", d+"dir-"+u).mode(0o777))
		}
		return steps
	})
	s.add(
		do("B", "unlink", "sticky/tmp/A"),                         // other
		do("nobody", "rename", "sticky/tmp/A").to("sticky/tmp/x"), // other
		do("B", "rename", "sticky/tmp/B").to("sticky/tmp/A"),      // over another's file
		do("B", "rmdir", "sticky/tmp/dir-A"),
		do("A", "rename", "sticky/tmp/A").to("sticky/tmp/A-moved"), // owner
		do("A", "unlink", "sticky/tmp/A2"),
		do("root", "unlink", "sticky/tmp/B"),
		do("nobody", "unlink", "sticky/tmp/nobody"),
		do("A", "unlink", "sticky/a/B"), // directory owner
		do("A", "rename", "sticky/a/nobody").to("sticky/a/n-moved"),
		do("A", "rmdir", "sticky/a/dir-B"),
		do("B", "unlink", "sticky/a/nobody2"),
		do("B", "rename", "sticky/a/B2").to("sticky/a/root"),
		do("nobody", "rmdir", "sticky/a/dir-root"),
		do("B", "unlink", "sticky/a/B2"),
		do("root", "rmdir", "sticky/a/dir-nobody"),
		do("A", "readdir", "sticky/a"),
		do("B", "readdir", "sticky/tmp"),
	)
}

// permRenames: renames within and across directories, over files and
// directories, with renameat2 flags.
func permRenames(s *permScript) {
	s.dir("mv", 0o777, 0, 0)
	s.dir("mv/to", 0o777, 0, 0)
	s.dir("mv/ro", 0o755, 0, 0)
	s.dir("mv/d1", 0o755, uidB, gidB)
	s.dir("mv/d2", 0o755, uidB, gidB)
	s.dir("mv/e1", 0o755, 0, 0)
	s.dir("mv/e2", 0o755, 0, 0)
	s.dir("mv/n1", 0o755, 0, 0)
	s.dir("mv/n2", 0o755, 0, 0)
	s.file("mv/n2/x", 0o644, 0, 0)
	s.file("mv/ro/f", 0o666, uidA, gidA)
	for _, f := range []string{"f1", "f2", "f3", "f4", "f5"} {
		s.file("mv/"+f, 0o644, uidA, gidA)
	}
	s.add(
		// Moving a directory to another parent rewrites its "..": that
		// needs write permission on the directory itself.
		do("A", "rename", "mv/d1").to("mv/to/d1"),
		do("B", "rename", "mv/d1").to("mv/to/d1"),
		do("A", "rename", "mv/d2").to("mv/d2x"), // same parent: no ".." to rewrite
		do("nobody", "rename", "mv/f1").to("mv/f2"),
		do("A", "rename", "mv/ro/f").to("mv/ro/g"), // no write on the parent
		do("A", "rename", "mv/ro/f").to("mv/f9"),
		do("root", "rename", "mv/e1").to("mv/e2"),     // over an empty dir
		do("root", "rename", "mv/n1").to("mv/n2"),     // over a non-empty dir
		do("root", "rename", "mv/f2").to("mv/e2"),     // file over dir
		do("root", "rename", "mv/e2").to("mv/f3"),     // dir over file
		do("root", "rename", "mv/n2").to("mv/n2/sub"), // into itself
		do("root", "rename", "mv/f3").to("mv/f3"),
		do("A", "rename", "mv/f3").to("mv/f4").flags(renameNoReplace),
		do("A", "rename", "mv/f3").to("mv/f6").flags(renameNoReplace),
		do("A", "rename", "mv/f4").to("mv/d2x").flags(renameExchange),
		do("B", "rename", "mv/f5").to("mv/f6").flags(renameExchange),
		do("root", "rename", "mv/missing").to("mv/f7"),
		do("A", "readdir", "mv"),
		do("A", "readdir", "mv/to"),
	)
}

// permRmdir: rmdir of non-empty directories, without permission, of files.
func permRmdir(s *permScript) {
	s.dir("rm", 0o755, 0, 0)
	s.dir("rm/full", 0o777, 0, 0)
	s.file("rm/full/x", 0o644, 0, 0)
	s.dir("rm/empty", 0o777, uidA, gidA)
	s.dir("rm/w", 0o777, 0, 0)
	s.dir("rm/w/sub", 0o755, uidB, gidB)
	s.file("rm/w/file", 0o644, uidB, gidB)
	s.add(
		do("root", "rmdir", "rm/full"),
		do("A", "rmdir", "rm/empty"), // parent not writable by A
		do("A", "unlink", "rm/full/x"),
		do("A", "rmdir", "rm/w/file"),
		do("A", "unlink", "rm/w/sub"),
		do("A", "rmdir", "rm/w/sub"), // writable parent, not sticky: allowed
		do("root", "rmdir", "rm/empty"),
		do("root", "rmdir", "rm/missing"),
		do("nobody", "unlink", "rm/w/file"),
	)
}

// permChmod: chmod by owner, non-owner and root; the setgid bit dropped
// when the owner is not in the group; chmod 000 seen at once.
func permChmod(s *permScript) {
	s.dir("chmod", 0o755, 0, 0)
	s.file("chmod/a", 0o644, uidA, gidA)
	s.file("chmod/g", 0o755, uidA, 0) // A is not in group 0
	s.file("chmod/z", 0o644, uidA, gidShared)
	s.dir("chmod/d", 0o755, uidA, gidA)
	s.file("chmod/d/f", 0o644, uidA, gidA)
	s.add(
		do("A", "chmod", "chmod/a").mode(0o600),
		do("B", "chmod", "chmod/a").mode(0o666),
		do("nobody", "chmod", "chmod/a").mode(0o666),
		do("root", "chmod", "chmod/a").mode(0o640),
		do("A", "chmod", "chmod/a").mode(0o1644), // sticky on a file
		do("A", "chmod", "chmod/g").mode(0o2755), // silently drops setgid
		do("A", "stat", "chmod/g"),
		do("A", "chmod", "chmod/g").mode(0o4755),
		do("root", "chmod", "chmod/g").mode(0o2755),
		do("A", "chmod", "chmod/a").mode(0o2644), // A is in group gidA
		// Every user reads (and caches the attributes of) z; after chmod 000
		// only root may open it, at once.
		do("A", "read", "chmod/z"),
		do("B", "read", "chmod/z"),
		do("nobody", "read", "chmod/z"),
		do("root", "chmod", "chmod/z").mode(0),
		do("A", "read", "chmod/z"),
		do("B", "read", "chmod/z"),
		do("nobody", "read", "chmod/z"),
		do("root", "read", "chmod/z"),
		do("A", "stat", "chmod/z"),
		do("A", "access", "chmod/z").mode(4),
		do("root", "open", "chmod/z").flags(syscall.O_WRONLY),
		do("B", "open", "chmod/z").flags(syscall.O_WRONLY),
		do("A", "chmod", "chmod/z").mode(0o640),
		do("A", "read", "chmod/z"),
		do("B", "read", "chmod/z"),
		do("nobody", "read", "chmod/z"),
		do("A", "chmod", "chmod/z").mode(0),
		do("A", "open", "chmod/z").flags(syscall.O_RDONLY),
		do("A", "read", "chmod/d/f"),
		do("B", "read", "chmod/d/f"),
		do("A", "chmod", "chmod/d").mode(0),
		do("B", "stat", "chmod/d/f"),
		do("A", "stat", "chmod/d/f"),
		do("B", "read", "chmod/d/f"),
		do("root", "stat", "chmod/d/f"),
		do("A", "readdir", "chmod/d"),
		do("A", "chmod", "chmod/d").mode(0o700),
		do("A", "readdir", "chmod/d"),
		do("B", "readdir", "chmod/d"),
	)
}

// permChown: chown by root (set-id bits cleared on files, kept on
// directories), by the owner to a group they are in or not, by others.
func permChown(s *permScript) {
	s.dir("chown", 0o777, 0, 0) // A makes a symlink here
	s.file("chown/s", 0o6755, uidA, gidShared)
	s.file("chown/s2", 0o6755, 0, 0)
	s.file("chown/s3", 0o6755, uidA, gidShared)
	s.file("chown/s4", 0o2644, uidA, gidShared) // setgid without group exec: kept
	s.file("chown/a", 0o644, uidA, gidA)
	s.dir("chown/d", 0o2775, uidA, gidShared)
	s.add(
		do("root", "chown", "chown/s").owner(uidB, gidShared),
		do("root", "chown", "chown/s2").owner(-1, -1),
		do("A", "chown", "chown/s3").owner(-1, gidA),
		do("A", "chown", "chown/s4").owner(-1, gidA),
		do("A", "chown", "chown/a").owner(-1, gidShared),
		do("A", "chown", "chown/a").owner(-1, gidB), // not A's group
		do("A", "chown", "chown/a").owner(uidB, -1), // give away
		do("A", "chown", "chown/a").owner(uidA, -1), // to itself
		do("B", "chown", "chown/a").owner(-1, gidShared),
		do("B", "chown", "chown/a").owner(-1, -1),
		do("A", "chown", "chown/a").owner(-1, -1),
		do("nobody", "chown", "chown/s2").owner(-1, -1),
		do("root", "chown", "chown/d").owner(uidB, gidB),
		do("B", "chown", "chown/d").owner(-1, gidShared),
		do("A", "symlink", "chown/l").to("a"),
		do("A", "lchown", "chown/l").owner(-1, gidShared),
		do("root", "lchown", "chown/l").owner(uidB, gidB),
		do("B", "chown", "chown/l").owner(-1, gidShared), // follows to a (A's)
	)
}

// permTruncate: truncate needs write permission; ftruncate a descriptor
// open for writing; set-id bits go on truncate by others.
func permTruncate(s *permScript) {
	s.dir("trunc", 0o755, 0, 0)
	s.file("trunc/a", 0o644, uidA, gidA)
	s.file("trunc/w", 0o666, uidA, gidA)
	s.file("trunc/ro", 0o444, uidA, gidA)
	s.file("trunc/sx", 0o6777, uidA, gidShared)
	s.add(
		do("B", "truncate", "trunc/a").size(0),
		do("A", "truncate", "trunc/a").size(2),
		do("root", "truncate", "trunc/a").size(1),
		do("A", "truncate", "trunc/a").size(100),
		do("B", "ftruncate", "trunc/a").flags(syscall.O_RDONLY).size(0),
		do("A", "ftruncate", "trunc/a").flags(syscall.O_RDONLY).size(0),
		do("A", "ftruncate", "trunc/a").flags(syscall.O_WRONLY).size(10),
		do("B", "ftruncate", "trunc/w").flags(syscall.O_WRONLY).size(3),
		do("nobody", "truncate", "trunc/w").size(4),
		do("A", "truncate", "trunc/ro").size(0), // own file, no write bit
		do("A", "ftruncate", "trunc/ro").flags(syscall.O_RDWR).size(0),
		do("root", "truncate", "trunc/ro").size(3),
		do("B", "truncate", "trunc/sx").size(1),
		do("A", "truncate", "trunc/missing").size(1),
		do("A", "truncate", "trunc").size(0),
	)
}

// permUtimes: setting times to now needs write permission; explicit times
// need ownership.
func permUtimes(s *permScript) {
	s.dir("utime", 0o755, 0, 0)
	s.file("utime/w", 0o666, uidA, gidA)
	s.file("utime/r", 0o644, uidA, gidA)
	s.eachUser(func(u string) []permStep {
		return []permStep{
			do(u, "utimes-now", "utime/w"),
			do(u, "utimes-explicit", "utime/w"),
			do(u, "utimes-now", "utime/r"),
			do(u, "utimes-explicit", "utime/r"),
		}
	})
}

// permTraversal: readdir needs read, lookup needs search permission.
func permTraversal(s *permScript) {
	s.dir("trav", 0o755, 0, 0)
	dirs := []struct {
		name     string
		mode     uint32
		uid, gid int
	}{
		{"0711", 0o711, uidA, gidA},
		{"0700", 0o700, uidA, gidA},
		{"0750", 0o750, uidA, gidShared},
		{"0766", 0o766, 0, 0}, // read and write, no search
		{"0733", 0o733, 0, 0}, // write and search, no read
	}
	for _, d := range dirs {
		s.dir("trav/"+d.name, d.mode, d.uid, d.gid)
		s.file("trav/"+d.name+"/f", 0o644, d.uid, d.gid)
	}
	for _, d := range dirs {
		dir := "trav/" + d.name
		s.eachUser(func(u string) []permStep {
			return []permStep{
				do(u, "readdir", dir),
				do(u, "stat", dir+"/f"),
				do(u, "read", dir+"/f"),
				do(u, "access", dir).mode(1),
				do(u, "open", dir+"/new-"+u).flags(syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL).mode(0o644),
			}
		})
	}
}

// permSetidWrites: a write by anyone but root clears the set-user-id bit,
// and the setgid bit where group execute is set.
func permSetidWrites(s *permScript) {
	s.dir("setid", 0o755, 0, 0)
	for _, u := range permUsers {
		for _, m := range []uint32{0o6777, 0o2767, 0o4777} {
			f := fmt.Sprintf("setid/%s-%04o", u.Name, m)
			s.file(f, m, uidA, gidShared)
			s.add(do(u.Name, "write", f).flags(syscall.O_WRONLY | syscall.O_APPEND).data("more"))
		}
	}
}

// permLinks: hard links (protected_hardlinks: only the owner, or one who
// may read and write the file, may link it), symlinks.
func permLinks(s *permScript) {
	s.dir("link", 0o777, 0, 0)
	s.file("link/a", 0o600, uidA, gidA)
	s.file("link/r", 0o644, uidA, gidA)
	s.file("link/w", 0o666, uidA, gidA)
	s.dir("link/d", 0o755, uidA, gidA)
	s.eachUser(func(u string) []permStep {
		return []permStep{
			do(u, "link", "link/a").to("link/a-" + u),
			do(u, "link", "link/r").to("link/r-" + u),
			do(u, "link", "link/w").to("link/w-" + u),
			do(u, "link", "link/d").to("link/d-" + u),
			do(u, "symlink", "link/s-"+u).to("a"),
			do(u, "read", "link/s-"+u),
			do(u, "link", "link/s-"+u).to("link/sl-" + u),
		}
	})
	s.add(do("root", "link", "link/a").to("link/w"), do("A", "unlink", "link/a"), do("B", "read", "link/w-B"))
}
