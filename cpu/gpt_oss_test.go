package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// randomMXFP4 is a [rows, cols] MXFP4 matrix of random codes and scales
// near 1/8.
func randomMXFP4(rng *rand.Rand, rows, cols int) *kernels.Matrix {
	q := &kernels.MXQuant{Mode: kernels.MXFP4, W: make([]byte, rows*cols/2), Scales: make([]byte, rows*cols/32)}
	for i := range q.W {
		q.W[i] = byte(rng.IntN(256))
	}
	for i := range q.Scales {
		q.Scales[i] = byte(122 + rng.IntN(4))
	}
	return &kernels.Matrix{Rows: rows, Cols: cols, MX: q}
}

func randomRows(rng *rand.Rand, n, k int, scale float64) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, k)
		for j := range out[i] {
			out[i][j] = float32(scale * rng.NormFloat64())
		}
	}
	return out
}

// expectedClamped is MoEClamped computed directly in float64 from the
// dequantized rows: gate (and up, or the interleaved gate_up rows) plus
// biases, the clamped SwiGLU, down plus its bias, weighted (renormalised
// for missing experts when renorm is set).
func expectedClamped(f *fakeExperts, b *graph.BiasedExperts, x []float32, n, hidden int, r *graph.Routes, renorm bool) []float64 {
	out := make([]float64, n*hidden)
	matvec := func(m *kernels.Matrix, v []float64) []float64 {
		row := make([]float32, m.Cols)
		y := make([]float64, m.Rows)
		for i := range y {
			m.Row(i, row)
			for c, w := range row {
				y[i] += float64(w) * v[c]
			}
		}
		return y
	}
	for t := 0; t < n; t++ {
		xt := make([]float64, hidden)
		for c := range xt {
			xt[c] = float64(x[t*hidden+c])
		}
		var all, kept float64
		for k := 0; k < r.TopK; k++ {
			all += float64(r.Weights[t*r.TopK+k])
			if !f.missing[r.IDs[t*r.TopK+k]] {
				kept += float64(r.Weights[t*r.TopK+k])
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
			gv := matvec(g, xt)
			var gate, up []float64
			if b.Interleaved {
				for i := 0; i < len(gv)/2; i++ {
					gate = append(gate, gv[2*i]+float64(b.GateBias[e][2*i]))
					up = append(up, gv[2*i+1]+float64(b.GateBias[e][2*i+1]))
				}
			} else {
				uv := matvec(u, xt)
				for i := range gv {
					gate = append(gate, gv[i]+float64(b.GateBias[e][i]))
					up = append(up, uv[i]+float64(b.UpBias[e][i]))
				}
			}
			act := make([]float64, len(gate))
			limit, alpha := float64(b.Limit), float64(b.Alpha)
			for i := range act {
				gi := math.Min(gate[i], limit)
				ui := math.Max(math.Min(up[i], limit), -limit)
				act[i] = (ui + 1) * gi / (1 + math.Exp(-alpha*gi))
			}
			y := matvec(d, act)
			for o := range y {
				out[t*hidden+o] += w * (y[o] + float64(b.DownBias[e][o]))
			}
		}
	}
	return out
}

// TestMoEClamped checks gpt-oss's experts (MXFP4, biases, clamped SwiGLU)
// in both layouts against the direct computation: in one Resolve, in
// groups (bitwise equal to one Resolve), and with missing experts (fast
// policy).
func TestMoEClamped(t *testing.T) {
	for _, interleaved := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(21, 22))
		const experts, hidden, inter, n, topK = 8, 64, 96, 6, 3
		f := &fakeExperts{}
		b := &graph.BiasedExperts{Alpha: 1.702, Limit: 7, Interleaved: interleaved}
		for e := 0; e < experts; e++ {
			if interleaved {
				f.gate = append(f.gate, randomMXFP4(rng, 2*inter, hidden))
				f.up = append(f.up, nil)
			} else {
				f.gate = append(f.gate, randomMXFP4(rng, inter, hidden))
				f.up = append(f.up, randomMXFP4(rng, inter, hidden))
			}
			f.down = append(f.down, randomMXFP4(rng, hidden, inter))
		}
		if interleaved {
			b.GateBias = randomRows(rng, experts, 2*inter, 0.5)
		} else {
			b.GateBias, b.UpBias = randomRows(rng, experts, inter, 0.5), randomRows(rng, experts, inter, 0.5)
		}
		b.DownBias = randomRows(rng, experts, hidden, 0.5)
		ex := New()
		x, r := randomBatch(rng, ex, n, hidden, topK, experts)
		for i := range x.Data {
			x.Data[i] *= 3 // gate and up values past the clamp
		}
		check := func(name string, renorm bool) []float32 {
			out := ex.NewTensor(n, hidden)
			if err := ex.MoEClamped(out, x, n, r, f, b); err != nil {
				t.Fatal(err)
			}
			want := expectedClamped(f, b, x.Data, n, hidden, r, renorm)
			for i := range want {
				if math.Abs(float64(out.Data[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("interleaved %v, %s: out[%d] = %g, want %g", interleaved, name, i, out.Data[i], want[i])
				}
			}
			return out.Data
		}
		checkResolveModes(t, f, r, check)
	}
}

func TestMoEClampedRejectsBadRoutes(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	f := &fakeExperts{gate: []*kernels.Matrix{randomMXFP4(rng, 64, 32)}, up: []*kernels.Matrix{nil}, down: []*kernels.Matrix{randomMXFP4(rng, 32, 32)}}
	b := &graph.BiasedExperts{Interleaved: true, GateBias: randomRows(rng, 1, 64, 1), DownBias: randomRows(rng, 1, 32, 1)}
	ex := New()
	x, out := ex.NewTensor(1, 32), ex.NewTensor(1, 32)
	for _, id := range []int32{1, -1} {
		r := &graph.Routes{Tokens: 1, TopK: 1, IDs: []int32{id}, Weights: []float32{1}}
		if err := ex.MoEClamped(out, x, 1, r, f, b); err == nil {
			t.Errorf("route to expert %d of 1 was accepted", id)
		}
	}
}
