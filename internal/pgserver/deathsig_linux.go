package pgserver

import "syscall"

// setParentDeathSignal has the kernel send the postmaster SIGQUIT, an
// immediate shutdown that ends its sessions too, if the thread that started
// it exits: see spawn.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGQUIT
}
