package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// fakeExperts has dense random experts; limit caps one Resolve and missing
// experts are reported absent (as the fast policy does).
type fakeExperts struct {
	gate, up, down []*kernels.Matrix
	limit          int
	missing        map[int32]bool
	resolves       int
	present        []bool
}

func (f *fakeExperts) NumExperts() int { return len(f.gate) }
func (f *fakeExperts) MaxResolve() int { return f.limit }
func (f *fakeExperts) Resolve(ids []int32) ([]bool, error) {
	f.resolves++
	if f.limit > 0 && len(ids) > f.limit {
		panic("Resolve called with more experts than MaxResolve")
	}
	p := f.present[:0]
	for range ids {
		p = append(p, false)
	}
	f.present = p
	for i, id := range ids {
		p[i] = !f.missing[id]
	}
	return p, nil
}
func (f *fakeExperts) Expert(id int32) (g, u, d *kernels.Matrix) {
	return f.gate[id], f.up[id], f.down[id]
}

func dense(rng *rand.Rand, rows, cols int) *kernels.Matrix {
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return &kernels.Matrix{Rows: rows, Cols: cols, F32: v}
}

// randomBatch is n tokens of random activations, each routed to topK
// distinct experts of experts with random weights.
func randomBatch(rng *rand.Rand, ex *Executor, n, hidden, topK, experts int) (*graph.Tensor, *graph.Routes) {
	x := ex.NewTensor(n, hidden)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	r := &graph.Routes{Tokens: n, TopK: topK, IDs: make([]int32, n*topK), Weights: make([]float32, n*topK)}
	for t := 0; t < n; t++ {
		perm := rng.Perm(experts)
		for k := 0; k < topK; k++ {
			r.IDs[t*topK+k] = int32(perm[k])
			r.Weights[t*topK+k] = rng.Float32()
		}
	}
	return x, r
}

// expectedMoE computes the weighted expert sum directly, per token.
func expectedMoE(f *fakeExperts, x []float32, n, hidden int, r *graph.Routes, renorm bool) []float32 {
	out := make([]float32, n*hidden)
	for t := 0; t < n; t++ {
		var all, kept float64
		for k := 0; k < r.TopK; k++ {
			w := float64(r.Weights[t*r.TopK+k])
			all += w
			if !f.missing[r.IDs[t*r.TopK+k]] {
				kept += w
			}
		}
		for k := 0; k < r.TopK; k++ {
			e := r.IDs[t*r.TopK+k]
			if f.missing[e] {
				continue
			}
			w := float64(r.Weights[t*r.TopK+k])
			if renorm {
				w *= all / kept
			}
			g, u, d := f.Expert(e)
			h := make([]float32, g.Rows)
			for i := range h {
				var a, b float64
				for c := 0; c < hidden; c++ {
					a += float64(g.F32[i*hidden+c]) * float64(x[t*hidden+c])
					b += float64(u.F32[i*hidden+c]) * float64(x[t*hidden+c])
				}
				h[i] = float32(a / (1 + math.Exp(-a)) * b)
			}
			for o := 0; o < hidden; o++ {
				var y float64
				for i := range h {
					y += float64(d.F32[o*len(h)+i]) * float64(h[i])
				}
				out[t*hidden+o] += float32(w * y)
			}
		}
	}
	return out
}

func TestMoE(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const experts, hidden, inter, n, topK = 8, 16, 12, 5, 3
	f := &fakeExperts{}
	for e := 0; e < experts; e++ {
		f.gate = append(f.gate, dense(rng, inter, hidden))
		f.up = append(f.up, dense(rng, inter, hidden))
		f.down = append(f.down, dense(rng, hidden, inter))
	}
	ex := New()
	x, r := randomBatch(rng, ex, n, hidden, topK, experts)
	check := func(name string, renorm bool) []float32 {
		out := ex.NewTensor(n, hidden)
		if err := ex.MoE(out, x, n, r, f); err != nil {
			t.Fatal(err)
		}
		want := expectedMoE(f, x.Data, n, hidden, r, renorm)
		for i := range want {
			if math.Abs(float64(out.Data[i]-want[i])) > 1e-3*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: out[%d] = %g, want %g", name, i, out.Data[i], want[i])
			}
		}
		return out.Data
	}
	checkResolveModes(t, f, r, check)
}

// checkResolveModes runs check (one MoE call against its direct
// computation) in one Resolve, in groups of two (bitwise equal to one
// Resolve) and with two experts missing (fast policy: renormalised).
func checkResolveModes(t *testing.T, f *fakeExperts, r *graph.Routes, check func(name string, renorm bool) []float32) {
	t.Helper()
	whole := check("one resolve", false)
	f.limit = 2
	f.resolves = 0
	grouped := check("groups of 2", false)
	if f.resolves < 3 {
		t.Fatalf("expected several resolves with a limit of 2, got %d", f.resolves)
	}
	for i := range whole {
		if whole[i] != grouped[i] {
			t.Fatalf("grouped resolves changed out[%d]: %g vs %g", i, grouped[i], whole[i])
		}
	}
	f.limit = 0
	f.missing = map[int32]bool{r.IDs[0]: true, r.IDs[4]: true}
	check("fast policy with missing experts", true)
}

// TestMoEQuantizedRegions runs 4-bit experts big enough to be cut into
// several row blocks, at decode (every expert in the parallel regions) and
// with a prompt where some experts take more tokens than the decode kernels
// (mixed with MatMul's path), against the dense reference of the
// dequantized weights; a decode step must not allocate.
func TestMoEQuantizedRegions(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	const experts, hidden, inter, topK = 12, 192, 320, 4
	f, deq := &fakeExperts{}, &fakeExperts{}
	quant := func(rows, cols int) (*kernels.Matrix, *kernels.Matrix) {
		d := dense(rng, rows, cols)
		for i := range d.F32 {
			d.F32[i] *= 0.1
		}
		q, err := kernels.Quantize(d.F32, rows, cols, 4, 64)
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < rows; r++ {
			q.Row(r, d.F32[r*cols:(r+1)*cols])
		}
		return q, d
	}
	for e := 0; e < experts; e++ {
		for _, p := range []struct {
			q, d       *[]*kernels.Matrix
			rows, cols int
		}{
			{&f.gate, &deq.gate, inter, hidden}, {&f.up, &deq.up, inter, hidden}, {&f.down, &deq.down, hidden, inter}} {
			q, d := quant(p.rows, p.cols)
			*p.q, *p.d = append(*p.q, q), append(*p.d, d)
		}
	}
	ex := New()
	for _, n := range []int{1, 3, 16} {
		x, r := randomBatch(rng, ex, n, hidden, topK, experts)
		out := ex.NewTensor(n, hidden)
		if err := ex.MoE(out, x, n, r, f); err != nil {
			t.Fatal(err)
		}
		want := expectedMoE(deq, x.Data, n, hidden, r, false)
		for i := range want {
			if math.Abs(float64(out.Data[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("n %d: out[%d] = %g, want %g", n, i, out.Data[i], want[i])
			}
		}
		if n == 1 {
			if a := testing.AllocsPerRun(10, func() { _ = ex.MoE(out, x, n, r, f) }); a > 0 {
				t.Errorf("a decode MoE step allocates %.0f times", a)
			}
		}
		// int8 activations for gate and up, then for down as well: close
		// to the float result (x rounded to 1/254 of its range per group).
		var scale float64
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for _, down := range []bool{false, true} {
			ex.Int8Experts, ex.Int8ExpertDown = true, down
			q8 := ex.NewTensor(n, hidden)
			err := ex.MoE(q8, x, n, r, f)
			ex.Int8Experts, ex.Int8ExpertDown = false, false
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Abs(float64(q8.Data[i]-want[i])) > 0.02*scale {
					t.Fatalf("n %d, int8 experts (down too: %v): out[%d] = %g, want %g (scale %g)", n, down, i, q8.Data[i], want[i], scale)
				}
			}
		}
	}
}
