//go:build unix

package tokenizer

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user + system), so that
// benchmarks can report throughput per CPU second, which the machine's
// other load disturbs far less than wall-clock time.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
