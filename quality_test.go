package mlxmoe

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// TestPagerQuality measures the mean NLL of the trained model's held-out
// chunks (each one prefill pass, in order, the pager warm from the
// previous chunk) for the exact and fast policies at 25/50/75% capacity,
// with and without the shipped profile (fill + pin 4). Exact must equal the
// resident model; fast may only lose quality, and less with more capacity.
// The table it logs is in BENCHMARKS.md.
func TestPagerQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("quality table skipped in -short")
	}
	dir, err := defaultmodel.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := fixture.LoadReference(t, fixture.Dir(t, "models/qwen3_next-code-tiny-4bit"))
	profile, _ := filepath.Abs("profiles/" + defaultmodel.Name + ".json")
	meanNLL := func(eo ExpertOptions) float64 {
		m := loadWith(t, dir, eo)
		var sum float64
		for _, ch := range ref.Heldout.Chunks {
			nll, err := m.MeanNLL(ch.IDs)
			if err != nil {
				t.Fatal(err)
			}
			sum += nll
		}
		return sum / float64(len(ref.Heldout.Chunks))
	}
	resident := meanNLL(ExpertOptions{Policy: "resident"})
	var table strings.Builder
	fmt.Fprintf(&table, "resident: mean NLL %.4f\n| capacity | exact | fast | fast + profile, pin 4 |\n|---|---|---|---|\n", resident)
	prevFast := math.Inf(1)
	for _, pct := range []int{25, 50, 75} {
		capacity := 64 * pct / 100
		exact := meanNLL(ExpertOptions{Policy: "exact", Capacity: capacity})
		fast := meanNLL(ExpertOptions{Policy: "fast", Capacity: capacity})
		fastProf := meanNLL(ExpertOptions{Policy: "fast", Capacity: capacity, Profile: profile, Pin: 4})
		fmt.Fprintf(&table, "| %d%% (%d/64) | %.4f | %.4f | %.4f |\n", pct, capacity, exact, fast, fastProf)
		if exact != resident {
			t.Errorf("capacity %d: exact NLL %.6f differs from resident %.6f", capacity, exact, resident)
		}
		if fast < resident-1e-9 || fastProf < resident-1e-9 {
			t.Errorf("capacity %d: fast NLL %.4f / %.4f below the resident %.4f", capacity, fast, fastProf, resident)
		}
		if fast > prevFast+0.05 {
			t.Errorf("capacity %d: fast NLL %.4f worse than at lower capacity (%.4f)", capacity, fast, prevFast)
		}
		prevFast = fast
	}
	t.Logf("\n%s", table.String())
}
