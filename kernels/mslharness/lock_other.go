//go:build !unix

package mslharness

// lockFile does not lock where there is no flock: a runner may be compiled
// twice, which is only slower.
func lockFile(string) (unlock func()) { return func() {} }
