package replicate

import "syscall"

// freeBytes is how many bytes an unprivileged writer may still use on the
// file system holding dir; ok is false when that cannot be told.
func freeBytes(dir string) (n int64, ok bool) {
	free, _, ok := space(dir)
	return free, ok
}

// space returns the free (for unprivileged writers) and total bytes of the
// file system holding dir.
func space(dir string) (free, total int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), true
}

// roomToSpare reports whether n more bytes of walfs's optional files (cache
// copies) leave the app plenty: at least 64 MiB and a tenth of the file
// system still free. Unknown means no.
func roomToSpare(dir string, n int64) bool {
	free, total, ok := space(dir)
	return ok && free-n >= max(64<<20, total/10)
}
