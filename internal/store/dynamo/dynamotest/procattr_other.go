//go:build !linux

package dynamotest

import "os/exec"

// setProcAttr does nothing outside Linux, which alone can kill a child when its
// parent dies: a server of a test process that dies without cleanup lives on.
func setProcAttr(*exec.Cmd) {}
