//go:build !unix

package hub

import (
	"context"
	"sync"
)

// locks stands in for file locks where flock is missing: it keeps two
// pulls in this process apart, not two processes.
var locks sync.Map

func lock(ctx context.Context, path string) (func(), error) {
	m, _ := locks.LoadOrStore(path, &sync.Mutex{})
	m.(*sync.Mutex).Lock()
	return m.(*sync.Mutex).Unlock, nil
}

// DiskFree is the space available on the file system that holds path, or
// -1 when it cannot be told (always, on this system).
func DiskFree(path string) int64 { return -1 }
