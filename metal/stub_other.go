//go:build !darwin || !cgo

package metal

import (
	"errors"
	"runtime"

	"github.com/mlx-moe/mlx-moe/graph"
)

// notAvailable is why there is no Metal device in this build.
var notAvailable = func() string {
	if runtime.GOOS == "darwin" {
		return "Metal is not available: this binary was built without cgo (CGO_ENABLED=0); use the CPU executor"
	}
	return "Metal is not available: Metal exists only on macOS (this is " + runtime.GOOS + "/" + runtime.GOARCH + "); use the CPU executor"
}()

// New always fails off macOS (or without cgo), with an error that starts
// "Metal is not available".
func New() (graph.Executor, error) { return nil, errors.New(notAvailable) }

// Available reports false off macOS (or without cgo), and why.
func Available() (bool, string) { return false, notAvailable }
