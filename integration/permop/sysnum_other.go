//go:build !amd64 && !arm64

package main

// sysRenameat2 is unknown here: renames with flags answer ENOSYS.
var sysRenameat2 = -1
