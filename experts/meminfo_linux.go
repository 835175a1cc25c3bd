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
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "MemAvailable" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, "", fmt.Errorf("/proc/meminfo: MemAvailable %q, want \"N kB\"", rest)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("/proc/meminfo: MemAvailable: %w", err)
		}
		return kb << 10, "MemAvailable", nil
	}
	if err := sc.Err(); err != nil {
		return 0, "", err
	}
	return 0, "", fmt.Errorf("/proc/meminfo has no MemAvailable line")
}
