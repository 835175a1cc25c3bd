package model

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// GatedDeltaNet is the linear-attention mixer of Qwen3-Next and Qwen3.5:
// projections to q, k, v, the output gate z and the gate inputs b, a; a
// causal depthwise conv1d + SiLU over q, k and v; the gated delta rule with
// a per-head [dk, dv] state; a gated RMSNorm with z; and out_proj.
//
// Each projection is its own matrix, whatever the checkpoint fused (the
// family's loader splits fused projections when the model is loaded), so
// every part is a contiguous tensor and no head is copied at run time.
type GatedDeltaNet struct {
	KeyHeads, ValueHeads, KeyDim, ValueDim, ConvKernel int
	Q, K, V, Z, B, A                                   *kernels.Matrix
	// Conv is [convChannels, ConvKernel]: the q channels, then k, then v.
	Conv   []float32
	ALog   []float32
	DtBias []float32
	// decay is -exp(ALog), the rate the softplus of the decay gate is
	// scaled by.
	decay []float32
	Norm  []float32
	Out   *kernels.Matrix
	Eps   float32
}

// deltaState is a linear-attention layer's cache: conv history and the
// delta-rule state (or Mamba-2's scan state). Both are fixed-size, so a
// snapshot is a copy. convQ, convK and convV are the conv history of the
// q, k and v channels (row views of Conv; nil for Mamba-2).
type deltaState struct {
	Conv, S             *graph.Tensor
	convQ, convK, convV *graph.Tensor
}

func (d *deltaState) CopyFrom(o MixerState, e graph.Executor, _ int) {
	src := o.(*deltaState)
	e.CopyCols(d.Conv, 0, 0, src.Conv, 0, 0, src.Conv.Rows, src.Conv.Cols)
	e.CopyCols(d.S, 0, 0, src.S, 0, 0, src.S.Rows, src.S.Cols)
}

// Reset clears the state for a new sequence: the conv history and the
// delta-rule state start at zero.
func (d *deltaState) Reset(e graph.Executor) {
	e.Zero(d.Conv)
	e.Zero(d.S)
}

// PerPosition: recurrent state cannot be cut back to a shorter prefix.
func (d *deltaState) PerPosition() bool { return false }

func (d *deltaState) Bytes() int64 { return tensorBytes(d.Conv, d.S) }

func (d *deltaState) Free(e graph.Executor) {
	e.Free(d.Conv)
	e.Free(d.S)
}

func (g *GatedDeltaNet) keyWidth() int   { return g.KeyHeads * g.KeyDim }
func (g *GatedDeltaNet) valueWidth() int { return g.ValueHeads * g.ValueDim }
func (g *GatedDeltaNet) convChannels() int {
	return 2*g.keyWidth() + g.valueWidth()
}

func (g *GatedDeltaNet) newState(e graph.Executor, _ int, _ kernels.KVFormat) MixerState {
	kw, k := g.keyWidth(), g.ConvKernel-1
	d := &deltaState{Conv: e.NewTensor(g.convChannels(), k), S: e.NewTensor(g.ValueHeads, g.KeyDim*g.ValueDim)}
	d.convQ = d.Conv.View(0, kw, 0, k)
	d.convK = d.Conv.View(kw, kw, 0, k)
	d.convV = d.Conv.View(2*kw, g.valueWidth(), 0, k)
	return d
}

// scratch returns the layer's scratch tensors (shared by every layer of
// the same shape).
func (g *GatedDeltaNet) scratch(s *scratch) (in, conv [3]*graph.Tensor, z, b, a, o *graph.Tensor) {
	kw, vw, hv := g.keyWidth(), g.valueWidth(), g.ValueHeads
	in = [3]*graph.Tensor{s.tensor("delta.qin", kw), s.tensor("delta.kin", kw), s.tensor("delta.vin", vw)}
	conv = [3]*graph.Tensor{s.tensor("delta.q", kw), s.tensor("delta.k", kw), s.tensor("delta.v", vw)}
	return in, conv, s.tensor("delta.z", vw), s.tensor("delta.b", hv), s.tensor("delta.a", hv), s.tensor("delta.o", vw)
}

func (g *GatedDeltaNet) plan(s *scratch) { g.scratch(s) }

func (g *GatedDeltaNet) forward(r *run, out, x *graph.Tensor, _ MixerState) error {
	return g.forwardSegments(r, out, x)
}

func (g *GatedDeltaNet) forwardSegments(r *run, out, x *graph.Tensor) error {
	e, n := r.E, r.n
	in, conv, z, b, a, o := g.scratch(&r.scratch)
	kc := g.keyWidth() * g.ConvKernel
	// 1. Input projections of all rows.
	e.MatMul(in[0], x, n, g.Q, nil)
	e.MatMul(in[1], x, n, g.K, nil)
	e.MatMul(in[2], x, n, g.V, nil)
	e.MatMul(z, x, n, g.Z, nil)
	e.MatMul(b, x, n, g.B, nil)
	e.MatMul(a, x, n, g.A, nil)
	// 2. Gates, in place: the log decay g = -exp(A_log)*softplus(a+dt_bias)
	// into a, the write strength beta = sigmoid(b) into b.
	e.Activate(a, a, n, graph.Softplus, g.DtBias, g.decay)
	e.Activate(b, b, n, graph.Sigmoid, nil, nil)
	// 3. Per segment, from its own state: the causal conv1d + SiLU over q,
	// k and v (depthwise: each part with its own channels' weights and
	// history), then the delta rule.
	for i := range r.segs {
		sg := r.segment(i)
		s := r.state(sg).(*deltaState)
		q, k, v := r.segRows(conv[0], sg), r.segRows(conv[1], sg), r.segRows(conv[2], sg)
		e.Conv1d(q, r.segRows(in[0], sg), sg.n, s.convQ, g.Conv[:kc], g.ConvKernel)
		e.Conv1d(k, r.segRows(in[1], sg), sg.n, s.convK, g.Conv[kc:2*kc], g.ConvKernel)
		e.Conv1d(v, r.segRows(in[2], sg), sg.n, s.convV, g.Conv[2*kc:], g.ConvKernel)
		e.GatedDelta(r.segRows(o, sg), q, k, v, r.segRows(a, sg), r.segRows(b, sg), sg.n, s.S, g.KeyHeads, g.ValueHeads, g.KeyDim, g.ValueDim)
	}
	// 4. The gated norm and out_proj over all rows.
	e.GatedRMSNorm(o, o, z, n, g.ValueDim, g.Norm, g.Eps)
	e.MatMul(out, o, n, g.Out, nil)
	return nil
}

// StateBytes is the size of the conv history and delta-rule state.
func (g *GatedDeltaNet) StateBytes(int, kernels.KVFormat) int64 {
	return int64(4 * (g.convChannels()*(g.ConvKernel-1) + g.ValueHeads*g.KeyDim*g.ValueDim))
}
