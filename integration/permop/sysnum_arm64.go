package main

import "syscall"

// sysRenameat2 is renameat2(2).
const sysRenameat2 = syscall.SYS_RENAMEAT2
