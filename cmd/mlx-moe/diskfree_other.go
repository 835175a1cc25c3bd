//go:build !unix

package main

// diskFree is the space available on the file system that holds path, or
// -1 when it cannot be told (always, on this system).
func diskFree(path string) int64 { return -1 }
