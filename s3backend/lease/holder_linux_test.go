package lease

import (
	"os/exec"
	"testing"
	"time"
)

// A holder killed with -9 whose parent has not collected it yet (a zombie)
// is gone: a restart on the same machine takes its lease at once.
func TestHolderGoneZombie(t *testing.T) {
	boot, ns := processIdentity()
	if boot == "" || ns == "" {
		t.Fatal("no boot id or pid namespace on this Linux machine")
	}
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Wait()
	defer live.Process.Kill()
	if holderGone(Holder{PID: live.Process.Pid, BootID: boot, PIDNamespace: ns}) {
		t.Fatal("a running process counts as gone")
	}

	dead := exec.Command("true")
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	defer dead.Wait() // collected only at the end: a zombie until then
	deadline := time.Now().Add(10 * time.Second)
	for !exited(dead.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("child never became a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !holderGone(Holder{PID: dead.Process.Pid, BootID: boot, PIDNamespace: ns}) {
		t.Fatal("a zombie holder counts as alive")
	}
}
