//go:build !darwin

package metal

import (
	"errors"
	"runtime"

	"github.com/mlx-moe/mlx-moe/graph"
)

// notAvailable is why there is no Metal device on this platform.
var notAvailable = "Metal is not available: Metal exists only on macOS (this is " + runtime.GOOS + "/" + runtime.GOARCH + "); use the CPU executor"

// New always fails off macOS, with an error that starts "Metal is not
// available".
func New() (graph.Executor, error) { return nil, errors.New(notAvailable) }

// Available reports false off macOS, and why.
func Available() (bool, string) { return false, notAvailable }
