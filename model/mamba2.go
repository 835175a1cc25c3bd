package model

import (
	"fmt"
	"math"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Mamba2 is the Mamba-2 (SSD) mixer: in_proj yields the gate z, the conv
// input xBC and the time steps dt; a causal depthwise conv1d (+ bias) and
// SiLU over xBC, which then splits into the scan input x and the per-group
// B and C; the scan per head with a scalar decay A; the D skip; a gated
// RMSNorm (gate first, over NormDim-sized chunks); out_proj.
//
// in_proj is split into its three parts when the model is loaded, so each
// is a contiguous matrix; x, B and C are column views of the conv output.
type Mamba2 struct {
	Scan       kernels.Mamba2Params
	ConvKernel int
	Z, XBC, Dt *kernels.Matrix
	// ZBias, XBCBias and DtProjBias are in_proj's bias, split like it
	// (nil without mamba_proj_bias); OutBias is out_proj's.
	ZBias, XBCBias, DtProjBias []float32
	// Conv is [convChannels, ConvKernel]; ConvBias has convChannels values
	// (zeros when the checkpoint has none).
	Conv, ConvBias []float32
	Norm           []float32
	NormDim        int
	Out            *kernels.Matrix
	OutBias        []float32
	Eps            float32
}

// inner is the width of the scan input and output (heads*headDim).
func (m *Mamba2) inner() int { return m.Scan.Heads * m.Scan.HeadDim }

// bcWidth is the width of B (and of C): groups*stateDim.
func (m *Mamba2) bcWidth() int { return m.Scan.Groups * m.Scan.StateDim }

func (m *Mamba2) convChannels() int { return m.inner() + 2*m.bcWidth() }

// newState makes the layer's cache: the conv history [convChannels,
// kernel-1] and the scan state [heads, headDim*stateDim], both zero at the
// start of a sequence and fixed-size, so Gated DeltaNet's deltaState (its
// conv views unused) holds them.
func (m *Mamba2) newState(e graph.Executor, _ int, _ kernels.KVFormat) MixerState {
	return &deltaState{Conv: e.NewTensor(m.convChannels(), m.ConvKernel-1),
		S: e.NewTensor(m.Scan.Heads, m.Scan.HeadDim*m.Scan.StateDim)}
}

// StateBytes is the size of the conv history and the scan state.
func (m *Mamba2) StateBytes(int, kernels.KVFormat) int64 {
	return int64(4 * (m.convChannels()*(m.ConvKernel-1) + m.Scan.StateSize()))
}

// scratch returns the layer's scratch tensors (shared by every layer of
// the same shape): the gate, the conv input and output with the x, B, C
// views of the latter, the time steps and the scan output.
func (m *Mamba2) scratch(s *scratch) (z, xbc, conv, x, b, c, dt, y *graph.Tensor) {
	in, bc := m.inner(), m.bcWidth()
	z, xbc, conv = s.tensor("mamba2.z", in), s.tensor("mamba2.xbc", m.convChannels()), s.tensor("mamba2.conv", m.convChannels())
	x = s.view("mamba2.x", conv, 0, in)
	b = s.view("mamba2.b", conv, in, bc)
	c = s.view("mamba2.c", conv, in+bc, bc)
	return z, xbc, conv, x, b, c, s.tensor("mamba2.dt", m.Scan.Heads), s.tensor("mamba2.y", in)
}

func (m *Mamba2) plan(s *scratch) { m.scratch(s) }

func (m *Mamba2) forward(r *run, out, h *graph.Tensor, st MixerState) error {
	e, n := r.E, r.n
	me, ok := e.(graph.Mamba2Executor)
	if !ok {
		return fmt.Errorf("the %s executor has no Mamba-2 ops (graph.Mamba2Executor)", e.Name())
	}
	s := st.(*deltaState)
	z, xbc, conv, x, b, c, dt, y := m.scratch(&r.scratch)
	// 1. in_proj, as its three parts.
	e.MatMul(z, h, n, m.Z, m.ZBias)
	e.MatMul(xbc, h, n, m.XBC, m.XBCBias)
	e.MatMul(dt, h, n, m.Dt, m.DtProjBias)
	// 2. Causal conv1d + bias + SiLU over xBC, continuing the history.
	me.Conv1dBias(conv, xbc, n, s.Conv, m.Conv, m.ConvBias, m.ConvKernel)
	// 3. The scan (time steps, decay, D skip inside), the gated norm and
	// out_proj.
	me.Mamba2Scan(y, x, dt, b, c, n, s.S, &m.Scan)
	me.RMSNormGate(y, y, z, n, m.NormDim, m.Norm, m.Eps)
	e.MatMul(out, y, n, m.Out, m.OutBias)
	return nil
}

// mamba2Shape is a Mamba-2 layer's sizes and options, from the config of
// the family (each names them its own way).
type mamba2Shape struct {
	heads, headDim, groups, stateDim, convKernel int
	convBias, projBias                           bool
	dtMin, dtMax                                 float32
}

// loadMamba2 reads the Mamba-2 mixer at prefix p ("model.layers.0.mamba.").
// Both layouts name the tensors alike; conv1d.weight is [C, 1, K] (HF) or
// [C, K, 1] (MLX), the same values in the same order.
func loadMamba2(w *weights, p string, sh mamba2Shape) *Mamba2 {
	c := w.cfg
	m := &Mamba2{ConvKernel: sh.convKernel, Eps: float32(c.RMSNormEps),
		Scan: kernels.Mamba2Params{Heads: sh.heads, HeadDim: sh.headDim, Groups: sh.groups, StateDim: sh.stateDim,
			DtMin: sh.dtMin, DtMax: sh.dtMax}}
	if sh.heads <= 0 || sh.groups <= 0 || sh.heads%sh.groups != 0 || sh.headDim <= 0 || sh.stateDim <= 0 || sh.convKernel < 2 {
		w.fail("%s: Mamba-2 layers need mamba_n_heads (%d) a multiple of mamba_n_groups (%d), positive mamba_d_head (%d) and mamba_d_state (%d), and mamba_d_conv >= 2 (%d)",
			c.Path, sh.heads, sh.groups, sh.headDim, sh.stateDim, sh.convKernel)
		return m
	}
	in, heads := m.inner(), sh.heads
	ch := m.convChannels()
	m.NormDim = in
	proj := w.linear(p+"in_proj", in+ch+heads, c.HiddenSize)
	if w.err != nil {
		return m
	}
	m.Z, m.XBC, m.Dt = rowBlock(proj, 0, in), rowBlock(proj, in, ch), rowBlock(proj, in+ch, heads)
	if sh.projBias {
		bias := w.vector(p+"in_proj.bias", in+ch+heads)
		if bias != nil {
			m.ZBias, m.XBCBias, m.DtProjBias = bias[:in], bias[in:in+ch], bias[in+ch:]
		}
		m.OutBias = w.vector(p+"out_proj.bias", c.HiddenSize)
	}
	m.Conv = w.vector(p+"conv1d.weight", ch*sh.convKernel)
	m.ConvBias = make([]float32, ch)
	if sh.convBias {
		m.ConvBias = w.vector(p+"conv1d.bias", ch)
	}
	aLog := w.vector(p+"A_log", heads)
	m.Scan.A = make([]float32, len(aLog))
	for i, v := range aLog {
		m.Scan.A[i] = float32(-math.Exp(float64(v)))
	}
	m.Scan.D = w.vector(p+"D", heads)
	m.Scan.DtBias = w.vector(p+"dt_bias", heads)
	m.Norm = w.vector(p+"norm.weight", in)
	m.Out = w.linear(p+"out_proj", c.HiddenSize, in)
	if w.err == nil {
		if err := m.Scan.Check(); err != nil {
			w.fail("%s: %v", p, err)
		}
	}
	return m
}
