//go:build unix

package main

import "golang.org/x/sys/unix"

// diskFree is the space available to this user on the file system that
// holds path, or -1 when it cannot be told.
func diskFree(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return -1
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize))
}
