//go:build !darwin || !cgo

package metal

import (
	"runtime"

	"github.com/mlx-moe/mlx-moe/graph"
)

// notAvailable is why there is no Metal device in this build.
var notAvailable = func() error {
	if runtime.GOOS == "darwin" {
		return notAvailableError("this binary was built without cgo (CGO_ENABLED=0); use the CPU executor")
	}
	return notAvailableError("Metal exists only on macOS (this is %s/%s); use the CPU executor", runtime.GOOS, runtime.GOARCH)
}()

// New always fails off macOS (or without cgo), with an error that wraps
// ErrNotAvailable.
func New() (graph.Executor, error) { return nil, notAvailable }

// Available reports false off macOS (or without cgo), and why.
func Available() (bool, string) { return false, notAvailable.Error() }
