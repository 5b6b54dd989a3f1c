package main

// sysRenameat2 is renameat2(2), which package syscall does not name on amd64.
const sysRenameat2 = 316
