//go:build !linux && !darwin

package experts

import "errors"

func availableMemory() (int64, string, error) {
	return 0, "", errors.New("available memory is unknown on this platform")
}

// ProcessMemory is not available on this platform.
func ProcessMemory() (rss, peak int64, err error) {
	return 0, 0, errors.New("process memory is unknown on this platform")
}
