package experts

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// availableMemory reads MemAvailable from /proc/meminfo: what the kernel
// estimates can be allocated without swapping, page cache included.
func availableMemory() (int64, string, error) {
	n, err := procBytes("/proc/meminfo", "MemAvailable")
	return n, "MemAvailable", err
}

// ProcessMemory returns the resident set size of this process now and its
// peak (VmRSS and VmHWM of /proc/self/status).
func ProcessMemory() (rss, peak int64, err error) {
	if rss, err = procBytes("/proc/self/status", "VmRSS"); err != nil {
		return 0, 0, err
	}
	peak, err = procBytes("/proc/self/status", "VmHWM")
	return rss, peak, err
}

// procBytes reads a "Name: N kB" line of a /proc file.
func procBytes(file, field string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("%s: %s %q, want \"N kB\"", file, field, rest)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", file, field, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no %s line", file, field)
}
