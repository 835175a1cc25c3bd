package model

import (
	"fmt"
	"math"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Mamba1 is Mamba-1's selective state-space mixer, as Jamba has it:
// in_proj to the inner x and the gate z; a causal depthwise conv1d with
// bias + SiLU over x; x_proj to the time step dt (low rank), B and C, each
// RMS-normalised (Jamba's dt/b/c layernorms); dt_proj + softplus; the
// selective scan with A = -exp(A_log) per channel and state, and the D
// skip; the gate silu(z); out_proj.
//
// in_proj is split into X and Z when the model is loaded, so each output is
// contiguous; dt, B and C are column views of x_proj's output.
type Mamba1 struct {
	Channels, DState, DtRank, ConvKernel int
	X, Z                                 *kernels.Matrix
	XBias, ZBias                         []float32 // mamba_proj_bias
	// Conv is [Channels, ConvKernel]; ConvBias is nil without
	// mamba_conv_bias.
	Conv, ConvBias       []float32
	XProj                *kernels.Matrix // [DtRank + 2*DState, Channels]
	DtNorm, BNorm, CNorm []float32
	DtProj               *kernels.Matrix
	DtBias               []float32
	// A is -exp(A_log), [Channels, DState].
	A, D    []float32
	Out     *kernels.Matrix
	OutBias []float32
	Eps     float32
}

// loadMamba1 reads the Mamba-1 block at prefix p ("model.layers.0.mamba.")
// with the sizes in s (from the config). HF stores conv1d as [C, 1, K],
// MLX as [C, K, 1]: both are [C, K] in memory.
func loadMamba1(w *weights, p string, s Mamba1) *Mamba1 {
	m := &s
	c, h := m.Channels, w.cfg.HiddenSize
	in := w.linear(p+"in_proj", 2*c, h)
	m.Conv = w.vector(p+"conv1d.weight", c*m.ConvKernel)
	if w.cfg.MambaConvBias == nil || *w.cfg.MambaConvBias {
		m.ConvBias = w.vector(p+"conv1d.bias", c)
	}
	m.XProj = w.linear(p+"x_proj", m.DtRank+2*m.DState, c)
	m.DtNorm = w.vector(p+"dt_layernorm.weight", m.DtRank)
	m.BNorm = w.vector(p+"b_layernorm.weight", m.DState)
	m.CNorm = w.vector(p+"c_layernorm.weight", m.DState)
	m.DtProj = w.linear(p+"dt_proj", c, m.DtRank)
	m.DtBias = w.vector(p+"dt_proj.bias", c)
	aLog := w.vector(p+"A_log", c*m.DState)
	m.D = w.vector(p+"D", c)
	m.Out = w.linear(p+"out_proj", h, c)
	if w.cfg.MambaProjBias {
		bias := w.vector(p+"in_proj.bias", 2*c)
		if bias != nil {
			m.XBias, m.ZBias = bias[:c], bias[c:]
		}
		m.OutBias = w.vector(p+"out_proj.bias", h)
	}
	if w.err != nil {
		return m
	}
	m.X, m.Z = rowBlock(in, 0, c), rowBlock(in, c, c)
	m.A = make([]float32, len(aLog))
	for i, v := range aLog {
		m.A[i] = float32(-math.Exp(float64(v)))
	}
	return m
}

func (m *Mamba1) newState(e graph.Executor, _ int, _ kernels.KVFormat) MixerState {
	// The conv history and the scan state, kept like Gated DeltaNet's
	// (fixed size, copied whole for snapshots, zeroed for a new sequence).
	return &deltaState{Conv: e.NewTensor(m.Channels, m.ConvKernel-1), S: e.NewTensor(m.Channels, m.DState)}
}

// StateBytes is the size of the conv history and scan state.
func (m *Mamba1) StateBytes(int, kernels.KVFormat) int64 {
	return int64(4 * m.Channels * (m.ConvKernel - 1 + m.DState))
}

// scratch returns the layer's scratch tensors (shared by every Mamba-1
// layer of the same shape): the inner x (reused for the scan's output), the
// gate z, the conv output, x_proj's output with its dt, B and C column
// views, and the full-width time step.
func (m *Mamba1) scratch(s *scratch) (x, z, conv, dbc, dtLow, b, c, dt *graph.Tensor) {
	x, z, conv = s.tensor("mamba1.x", m.Channels), s.tensor("mamba1.z", m.Channels), s.tensor("mamba1.conv", m.Channels)
	dbc = s.tensor("mamba1.dbc", m.DtRank+2*m.DState)
	dtLow = s.view("mamba1.dtlow", dbc, 0, m.DtRank)
	b = s.view("mamba1.b", dbc, m.DtRank, m.DState)
	c = s.view("mamba1.c", dbc, m.DtRank+m.DState, m.DState)
	return x, z, conv, dbc, dtLow, b, c, s.tensor("mamba1.dt", m.Channels)
}

func (m *Mamba1) plan(s *scratch) { m.scratch(s) }

func (m *Mamba1) forward(r *run, out, h *graph.Tensor, st MixerState) error {
	e, n := r.E, r.n
	me, ok := e.(graph.Mamba1Executor)
	if !ok {
		return fmt.Errorf("the %s executor has no Mamba-1 ops (graph.Mamba1Executor)", e.Name())
	}
	s := st.(*deltaState)
	x, z, conv, dbc, dtLow, b, c, dt := m.scratch(&r.scratch)
	// 1. in_proj: the inner x and the gate z.
	e.MatMul(x, h, n, m.X, m.XBias)
	e.MatMul(z, h, n, m.Z, m.ZBias)
	// 2. Causal depthwise conv1d + bias + SiLU, continuing the history.
	me.Mamba1Conv(conv, x, n, s.Conv, m.Conv, m.ConvBias, m.ConvKernel)
	// 3. x_proj to dt (low rank), B and C, each RMS-normalised in place;
	// dt_proj to one time step per channel (its bias and the softplus are
	// the scan's, as in mamba_ssm's selective_scan).
	e.MatMul(dbc, conv, n, m.XProj, nil)
	e.RMSNorm(dtLow, dtLow, n, m.DtRank, m.DtNorm, m.Eps)
	e.RMSNorm(b, b, n, m.DState, m.BNorm, m.Eps)
	e.RMSNorm(c, c, n, m.DState, m.CNorm, m.Eps)
	e.MatMul(dt, dtLow, n, m.DtProj, nil)
	// 4. The selective scan with the D skip and the silu(z) gate, into x
	// (free since the conv), then out_proj.
	me.Mamba1Scan(x, conv, dt, b, c, z, n, s.S, m.DtBias, m.A, m.D)
	e.MatMul(out, x, n, m.Out, m.OutBias)
	return nil
}
