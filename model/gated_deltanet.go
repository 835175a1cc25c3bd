package model

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// GatedDeltaNet is the linear-attention mixer of Qwen3-Next and Qwen3.5:
// projections to q, k, v (per key-head group), the output gate z and the
// gate inputs b, a; a causal depthwise conv1d + SiLU over [q | k | v]; the
// gated delta rule with a per-head [dk, dv] state; a gated RMSNorm with z;
// and out_proj.
type GatedDeltaNet struct {
	KeyHeads, ValueHeads, KeyDim, ValueDim, ConvKernel int
	// Inputs projects x to the mixer inputs; split says where each part is.
	Inputs []InputProjection
	Conv   []float32 // [convChannels, ConvKernel]
	ALog   []float32
	DtBias []float32
	Norm   []float32
	Out    *kernels.Matrix
	Eps    float32
}

// InputProjection is one input matrix and the column blocks of its output
// that go to q, k, v, z, b, a (Qwen3-Next interleaves them per key head in
// one fused projection; Qwen3.5 has a projection per part).
type InputProjection struct {
	M      *kernels.Matrix
	Blocks []columnBlock
}

// columnBlock copies Cols columns from Src (in the projection output) to
// Dst in the named destination tensor.
type columnBlock struct {
	Part     string // "qkv" (conv input), "z", "b" or "a"
	Src, Dst int
	Cols     int
}

// deltaState is a linear-attention layer's cache: conv history and the
// delta-rule state. Both are fixed-size, so a snapshot is a copy.
type deltaState struct{ Conv, S *graph.Tensor }

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

func (g *GatedDeltaNet) keyWidth() int   { return g.KeyHeads * g.KeyDim }
func (g *GatedDeltaNet) valueWidth() int { return g.ValueHeads * g.ValueDim }
func (g *GatedDeltaNet) convChannels() int {
	return 2*g.keyWidth() + g.valueWidth()
}

func (g *GatedDeltaNet) newState(e graph.Executor, _ int) MixerState {
	return &deltaState{Conv: e.NewTensor(g.convChannels(), g.ConvKernel-1), S: e.NewTensor(g.ValueHeads, g.KeyDim*g.ValueDim)}
}

func (g *GatedDeltaNet) forward(r *run, out, x *graph.Tensor, st MixerState) error {
	e, n := r.E, r.n
	s := st.(*deltaState)
	kw, vw := g.keyWidth(), g.valueWidth()
	parts := map[string]*graph.Tensor{
		"qkv": r.tensor("delta.qkv", g.convChannels()),
		"z":   r.tensor("delta.z", vw),
		"b":   r.tensor("delta.b", g.ValueHeads),
		"a":   r.tensor("delta.a", g.ValueHeads),
	}
	for i, p := range g.Inputs {
		proj := r.tensor("delta.in"+string(rune('0'+i)), p.M.Rows)
		e.MatMul(proj, x, n, p.M, nil)
		for _, b := range p.Blocks {
			e.CopyCols(parts[b.Part], 0, b.Dst, proj, 0, b.Src, n, b.Cols)
		}
	}
	conv := r.tensor("delta.conv", g.convChannels())
	e.Conv1d(conv, parts["qkv"], n, s.Conv, g.Conv, g.ConvKernel)
	q := r.tensor("delta.q", kw)
	k := r.tensor("delta.k", kw)
	v := r.tensor("delta.v", vw)
	e.CopyCols(q, 0, 0, conv, 0, 0, n, kw)
	e.CopyCols(k, 0, 0, conv, 0, kw, n, kw)
	e.CopyCols(v, 0, 0, conv, 0, 2*kw, n, vw)
	gate := r.tensor("delta.g", g.ValueHeads)
	beta := r.tensor("delta.beta", g.ValueHeads)
	e.DeltaGates(gate, beta, parts["a"], parts["b"], n, g.ALog, g.DtBias)
	o := r.tensor("delta.o", vw)
	e.GatedDelta(o, q, k, v, gate, beta, n, s.S, g.KeyHeads, g.ValueHeads, g.KeyDim, g.ValueDim)
	e.GatedRMSNorm(o, o, parts["z"], n, g.ValueDim, g.Norm, g.Eps)
	e.MatMul(out, o, n, g.Out, nil)
	return nil
}

// StateBytes is the size of the conv history and delta-rule state.
func (g *GatedDeltaNet) StateBytes(int) int64 {
	return int64(4 * (g.convChannels()*(g.ConvKernel-1) + g.ValueHeads*g.KeyDim*g.ValueDim))
}
