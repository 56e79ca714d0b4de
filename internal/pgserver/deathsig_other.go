//go:build !linux

package pgserver

import "syscall"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal: a server whose test process dies without cleanup lives on.
func setParentDeathSignal(attr *syscall.SysProcAttr) {}
