//go:build !linux && !darwin

package experts

import (
	"fmt"
	"os"
)

func openDirect(name string) (*os.File, error) {
	return nil, fmt.Errorf("direct IO is not supported on this platform; using buffered reads for %s", name)
}
