package cpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// randTensor is a contiguous [rows, cols] tensor of normal values.
func randTensor(rng *rand.Rand, rows, cols int) *graph.Tensor {
	t := New().NewTensor(rows, cols)
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

// embedded returns a view of columns [pad, pad+t.Cols) of a wider tensor
// holding t's values there and random values around them, and the wider
// tensor.
func embedded(rng *rand.Rand, t *graph.Tensor, pad int) (view, wide *graph.Tensor) {
	wide = randTensor(rng, t.Rows, t.Cols+2*pad)
	view = wide.View(0, t.Rows, pad, t.Cols)
	for r := 0; r < t.Rows; r++ {
		copy(view.Row(r), t.Row(r))
	}
	return view, wide
}

// rowsOf copies the rows of t (a view or not) out.
func rowsOf(t *graph.Tensor) []float32 {
	var out []float32
	for r := 0; r < t.Rows; r++ {
		out = append(out, t.Row(r)...)
	}
	return out
}

// TestOpsOnViews runs every row-wise op once on contiguous tensors and once
// on the same values held in column views of wider tensors, and checks the
// results are identical and nothing outside the views changed.
func TestOpsOnViews(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, heads, hd, pad = 5, 2, 8, 3
	w := dense(rng, 12, heads*hd)
	norm := make([]float32, hd)
	for i := range norm {
		norm[i] = 1 + float32(i)/10
	}
	inv, scale := kernels.RopeInvFreq(hd, 10000, nil)
	rope := &kernels.RopeParams{RotaryDim: hd, InvFreq: inv, Scale: scale}
	pos := []int32{0, 1, 2, 3, 4}
	bias := make([]float32, heads*hd)
	for i := range bias {
		bias[i] = float32(i)
	}
	conv := randTensor(rng, 7, 4).Data
	type op struct {
		name string
		// inputs are made in contiguous form; run gets either form.
		inputs  []int // column counts
		outCols int
		run     func(e *Executor, out *graph.Tensor, in []*graph.Tensor)
	}
	ops := []op{
		{"MatMul", []int{heads * hd}, 12, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) { e.MatMul(out, in[0], n, w, nil) }},
		{"RMSNorm", []int{heads * hd}, heads * hd, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.RMSNorm(out, in[0], n, hd, norm, 1e-6)
		}},
		{"Rope", []int{heads * hd}, heads * hd, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.Add(out, in[0], in[0], n)
			e.Rope(out, pos, heads, hd, rope)
		}},
		{"SwiGLU", []int{6, 6}, 6, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) { e.SwiGLU(out, in[0], in[1], n) }},
		{"MulSigmoid", []int{6, 6}, 6, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) { e.MulSigmoid(out, in[0], in[1], n) }},
		{"MulSigmoid/one", []int{6, 1}, 6, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) { e.MulSigmoid(out, in[0], in[1], n) }},
		{"GatedRMSNorm", []int{heads * hd, heads * hd}, heads * hd, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.GatedRMSNorm(out, in[0], in[1], n, hd, norm, 1e-6)
		}},
		{"Activate", []int{heads * hd}, heads * hd, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.Activate(out, in[0], n, graph.Softplus, bias, bias)
		}},
		{"Attention", []int{heads * hd, hd, hd}, heads * hd, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.Attention(out, in[0], in[1], in[2], n, 0, heads, 1, hd, hd, 0.3)
		}},
		{"GatedDelta", []int{8, 8, 8, 2, 2}, 8, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.GatedDelta(out, in[0], in[1], in[2], in[3], in[4], n, e.NewTensor(2, 16), 2, 2, 4, 4)
		}},
		{"Conv1d", []int{7}, 7, func(e *Executor, out *graph.Tensor, in []*graph.Tensor) {
			e.Conv1d(out, in[0], n, e.NewTensor(7, 3), conv, 4)
		}},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			e := New()
			var flat, views []*graph.Tensor
			for _, cols := range o.inputs {
				x := randTensor(rng, n, cols)
				v, _ := embedded(rng, x, pad)
				flat, views = append(flat, x), append(views, v)
			}
			want := e.NewTensor(n, o.outCols)
			o.run(e, want, flat)
			out, outWide := embedded(rng, e.NewTensor(n, o.outCols), pad)
			before := slices.Clone(outWide.Data)
			o.run(e, out, views)
			if got := rowsOf(out); !slices.Equal(got, want.Data) {
				t.Fatalf("on views %v, want %v", got, want.Data)
			}
			for r := 0; r < n; r++ {
				for c := 0; c < outWide.Cols; c++ {
					if (c < pad || c >= pad+o.outCols) && outWide.Data[r*outWide.Cols+c] != before[r*outWide.Cols+c] {
						t.Fatalf("row %d column %d outside the output view changed", r, c)
					}
				}
			}
			for i := range views {
				if !slices.Equal(rowsOf(views[i]), flat[i].Data) {
					t.Fatalf("input %d changed", i)
				}
			}
		})
	}
}

// TestMatMulHeads checks the batched per-head product against one MatMul
// per head on the head's columns, with a separate input per head and with
// one shared input (xStep 0).
func TestMatMulHeads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, heads, in, rows = 3, 4, 8, 5
	ws := make([]*kernels.Matrix, heads)
	for h := range ws {
		ws[h] = dense(rng, rows, in)
	}
	for _, xStep := range []int{in, 0} {
		e := New()
		x := randTensor(rng, n, heads*in)
		const outStep = rows + 2
		out := e.NewTensor(n, heads*outStep)
		e.MatMulHeads(out, outStep, x, xStep, n, ws)
		for h, w := range ws {
			xh := make([]float32, 0, n*in)
			for tok := 0; tok < n; tok++ {
				xh = append(xh, x.Row(tok)[h*xStep:h*xStep+in]...)
			}
			want := make([]float32, n*rows)
			kernels.MatMul(want, xh, n, w)
			for tok := 0; tok < n; tok++ {
				got := out.Row(tok)[h*outStep : h*outStep+rows]
				if !slices.Equal(got, want[tok*rows:(tok+1)*rows]) {
					t.Fatalf("xStep %d head %d token %d: %v, want %v", xStep, h, tok, got, want[tok*rows:(tok+1)*rows])
				}
				for _, v := range out.Row(tok)[h*outStep+rows : (h+1)*outStep] {
					if v != 0 {
						t.Fatalf("xStep %d head %d: a column between heads was written", xStep, h)
					}
				}
			}
		}
	}
}

// TestActivateMatchesDeltaGates checks Activate's softplus and sigmoid
// against the gated delta rule's gate reference (kernels.GatedDeltaGates):
// the decay -exp(A_log)*softplus(a+dt_bias) and sigmoid(b).
func TestActivateMatchesDeltaGates(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, hv = 4, 6
	a, b := randTensor(rng, n, hv), randTensor(rng, n, hv)
	a.Data[0] = 25 // softplus's linear range
	aLog, dtBias, decay := make([]float32, hv), make([]float32, hv), make([]float32, hv)
	for i := range aLog {
		aLog[i], dtBias[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		decay[i] = float32(-math.Exp(float64(aLog[i])))
	}
	wantG, wantBeta := make([]float32, n*hv), make([]float32, n*hv)
	kernels.GatedDeltaGates(wantG, wantBeta, a.Data, b.Data, aLog, dtBias, n, hv)
	e := New()
	g, beta := e.NewTensor(n, hv), e.NewTensor(n, hv)
	e.Activate(g, a, n, graph.Softplus, dtBias, decay)
	e.Activate(beta, b, n, graph.Sigmoid, nil, nil)
	if !slices.Equal(beta.Data, wantBeta) {
		t.Errorf("sigmoid %v, want %v", beta.Data, wantBeta)
	}
	for i := range wantG {
		if d := math.Abs(float64(g.Data[i] - wantG[i])); d > 1e-6*math.Max(1, math.Abs(float64(wantG[i]))) {
			t.Errorf("softplus decay [%d] = %g, want %g", i, g.Data[i], wantG[i])
		}
	}
}
