//go:build unix

package mslharness

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on path (created if need be) across
// processes and returns its release. Without a lock it returns a no-op:
// the cache still works, a runner may just be compiled twice.
func lockFile(path string) (unlock func()) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() }
}
