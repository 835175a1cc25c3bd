package mlxmoe

import (
	"os"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/testenv"
)

// TestMain keeps the warm-start files of models the tests close out of the
// user's cache directory.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
