//go:build unix

package kernels

import "syscall"

// cpuSeconds is the CPU time this process has used: a benchmark divides
// its work by this, as well as by wall time, because on a shared machine
// the wall clock measures the neighbours too.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
