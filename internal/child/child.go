// Package child starts the servers tests run for real (PostgreSQL, nginx)
// as child processes that end with the test process, whatever ends it (a
// go test timeout runs no cleanup), provided the caller sets
// cmd.SysProcAttr.Pdeathsig.
package child

import (
	"os/exec"
	"runtime"
)

// Start starts cmd and reaps it when it exits, closing the returned
// channel then. The start and the wait run on one goroutine locked to its
// OS thread: the parent-death signal cmd.SysProcAttr.Pdeathsig names is
// sent when the thread that started the child exits, and a locked thread
// lives exactly as long as its goroutine, so the child outlives neither.
func Start(cmd *exec.Cmd) (done <-chan struct{}, err error) {
	exited := make(chan struct{})
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
