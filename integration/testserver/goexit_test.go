package testserver

import "runtime"

func runtimeGoexit() { runtime.Goexit() }
