package cpu

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestLayerNormOnViews: the executor's LayerNorm is kernels.LayerNorm per
// dim-sized chunk, on contiguous tensors and on column views alike, and
// leaves the columns around a view alone.
func TestLayerNormOnViews(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	const n, dim, chunks, pad = 3, 16, 2, 3
	x := randTensor(rng, n, dim*chunks)
	w, b := randTensor(rng, 1, dim).Data, randTensor(rng, 1, dim).Data
	want := make([]float32, len(x.Data))
	kernels.LayerNorm(want, x.Data, w, b, n*chunks, dim, 1e-5)

	e := New()
	out := e.NewTensor(n, dim*chunks)
	e.LayerNorm(out, x, n, dim, w, b, 1e-5)
	if !slices.Equal(out.Data, want) {
		t.Fatalf("contiguous LayerNorm differs from the kernel")
	}
	xv, _ := embedded(rng, x, pad)
	ov, wide := embedded(rng, e.NewTensor(n, dim*chunks), pad)
	before := slices.Clone(wide.Data)
	e.LayerNorm(ov, xv, n, dim, w, b, 1e-5)
	if !slices.Equal(rowsOf(ov), want) {
		t.Fatalf("LayerNorm on views differs from the kernel")
	}
	for r := 0; r < n; r++ {
		row, old := wide.Row(r), before[r*wide.Cols:(r+1)*wide.Cols]
		if !slices.Equal(row[:pad], old[:pad]) || !slices.Equal(row[pad+dim*chunks:], old[pad+dim*chunks:]) {
			t.Fatalf("row %d: LayerNorm wrote outside its view", r)
		}
	}
}
