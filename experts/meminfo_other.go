//go:build !linux && !darwin

package experts

import "errors"

func availableMemory() (int64, string, error) {
	return 0, "", errors.New("available memory is unknown on this platform")
}
