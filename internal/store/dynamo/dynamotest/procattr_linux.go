package dynamotest

import (
	"os/exec"
	"syscall"
)

// setProcAttr has Linux kill the server when the test process dies without
// running its cleanup (a panic, a timeout), so that no server outlives it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
