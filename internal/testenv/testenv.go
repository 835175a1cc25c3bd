// Package testenv keeps a package's tests away from the user's own files.
// The engine keeps state in the user's cache directory (the experts'
// warm-start files, the unpacked default model, unpacked gzip shards); a
// test that loads a model and closes it would otherwise leave files in the
// real ~/.cache/mlx-moe. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Run runs the tests with XDG_CACHE_HOME set to a new temporary directory,
// which it removes afterwards, and returns m.Run's exit code. Child
// processes the tests start inherit the setting. (On macOS os.UserCacheDir
// ignores XDG_CACHE_HOME; only the gzip-shard cache uses it, and tests
// unpack fixtures into their own temporary directories instead.)
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mlx-moe-test-cache")
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: a temporary cache directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Setenv("XDG_CACHE_HOME", dir); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: setting XDG_CACHE_HOME: %v\n", err)
		return 1
	}
	return m.Run()
}
