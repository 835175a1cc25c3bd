package experts

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// availableMemory returns three quarters of the physical memory (hw.memsize):
// macOS keeps no MemAvailable, and on unified memory the GPU shares it.
func availableMemory() (int64, string, error) {
	s, err := syscall.Sysctl("hw.memsize")
	if err != nil {
		return 0, "", err
	}
	b := []byte(s)
	if len(b) < 8 {
		// Sysctl drops a trailing zero byte; put it back.
		b = append(b, make([]byte, 8-len(b))...)
	}
	total := int64(binary.LittleEndian.Uint64(b[:8]))
	if total <= 0 {
		return 0, "", fmt.Errorf("hw.memsize = %d", total)
	}
	return total / 4 * 3, "3/4 of hw.memsize", nil
}

// ProcessMemory returns the peak resident set size of this process
// (getrusage's ru_maxrss, in bytes on macOS) for both values: the current
// size needs mach calls, which need cgo.
func ProcessMemory() (rss, peak int64, err error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, err
	}
	return ru.Maxrss, ru.Maxrss, nil
}
