package model

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// ropeFor builds the rotary parameters for heads of headDim values from the
// config (partial rotary factor, rope_scaling).
func ropeFor(w *weights, headDim int, interleaved bool) *kernels.RopeParams {
	c := w.cfg
	dim := int(float64(headDim) * c.PartialRotaryFactor)
	var yarn *kernels.YaRN
	base := c.RopeTheta
	switch kind := c.RopeScaling.Kind(); kind {
	case "", "default":
	case "dynamic":
		// Only Hunyuan's alpha form: a fixed, larger base. Without alpha,
		// dynamic NTK rescales with the sequence length, which no kernel does.
		if c.RopeScaling.Alpha <= 0 {
			w.fail("%s: rope_scaling type \"dynamic\" without alpha is not supported (only Hunyuan's alpha form is)", c.Path)
			break
		}
		base = ntkAlphaBase(base, c.RopeScaling.Alpha, dim)
	case "yarn":
		rs := c.RopeScaling
		yarn = &kernels.YaRN{Factor: rs.Factor, BetaFast: rs.BetaFast, BetaSlow: rs.BetaSlow,
			MScale: rs.MScale, MScaleAllDim: rs.MScaleAllDim, OriginalMaxPositions: rs.OriginalMaxPositionEmbeddings}
	default:
		w.fail("%s: rope_scaling type %q is not supported (yarn and Hunyuan's dynamic alpha are)", c.Path, kind)
	}
	inv, scale := kernels.RopeInvFreq(dim, base, yarn)
	return &kernels.RopeParams{RotaryDim: dim, InvFreq: inv, Scale: scale, Interleaved: interleaved}
}

// attentionOptions are the per-family differences of standard attention.
type attentionOptions struct {
	bias    bool // q/k/v projection biases
	outBias bool // o_proj bias (PhiMoE)
	// rope replaces the rotary parameters ropeFor derives from the config
	// (PhiMoE's LongRoPE).
	rope      *kernels.RopeParams
	qkNorm    bool // per-head q_norm/k_norm
	normWhole bool // OLMoE: q_norm/k_norm over the whole projection
	gated     bool // Qwen3-Next: output gate in q_proj
}

func loadAttention(w *weights, p string, o attentionOptions) *Attention {
	c := w.cfg
	a := &Attention{Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
		Eps: float32(c.RMSNormEps), Scale: kernels.AttentionScale(c.HeadDim), NormWhole: o.normWhole}
	qd, kd := a.Heads*a.HeadDim, a.KVHeads*a.HeadDim
	qRows := qd
	if o.gated {
		qRows = 2 * qd
	}
	a.Q = w.linear(p+"q_proj", qRows, c.HiddenSize)
	a.K = w.linear(p+"k_proj", kd, c.HiddenSize)
	a.V = w.linear(p+"v_proj", kd, c.HiddenSize)
	a.O = w.linear(p+"o_proj", c.HiddenSize, qd)
	if o.bias {
		a.QBias = w.vector(p+"q_proj.bias", qRows)
		a.KBias = w.vector(p+"k_proj.bias", kd)
		a.VBias = w.vector(p+"v_proj.bias", kd)
	}
	if o.outBias {
		a.OBias = w.vector(p+"o_proj.bias", c.HiddenSize)
	}
	if o.gated && w.err == nil {
		// q_proj holds [query(HeadDim) | gate(HeadDim)] per head: split it
		// into two projections so each output is contiguous.
		var qRows, gRows []int
		for h := 0; h < a.Heads; h++ {
			for i := 0; i < a.HeadDim; i++ {
				qRows = append(qRows, 2*h*a.HeadDim+i)
				gRows = append(gRows, (2*h+1)*a.HeadDim+i)
			}
		}
		a.QBias, a.QGateBias = pick(a.QBias, qRows), pick(a.QBias, gRows)
		parts := splitRows(a.Q, append(qRows, gRows...), qd, qd)
		a.Q, a.QGate = parts[0], parts[1]
	}
	switch {
	case o.normWhole:
		a.QNorm = w.vector(p+"q_norm.weight", qd)
		a.KNorm = w.vector(p+"k_norm.weight", kd)
	case o.qkNorm:
		a.QNorm = w.vector(p+"q_norm.weight", a.HeadDim)
		a.KNorm = w.vector(p+"k_norm.weight", a.HeadDim)
	}
	a.Rope = o.rope
	if a.Rope == nil {
		a.Rope = ropeFor(w, a.HeadDim, false)
	}
	return a
}

func loadMLP(w *weights, p string, inter int) *MLP {
	h := w.cfg.HiddenSize
	return &MLP{Gate: w.linear(p+"gate_proj", inter, h), Up: w.linear(p+"up_proj", inter, h), Down: w.linear(p+"down_proj", h, inter)}
}

// expertNames are the tensor names of one layer's routed experts in the two
// layouts: MLX stacks them ("<p>switch_mlp.gate_proj"), Hugging Face stores
// one module per expert ("<p>experts.<e>.gate_proj", Mixtral w1/w3/w2).
type expertNames struct {
	gate, up, down string // per-expert module names (gate_proj or w1, ...)
	// gateUp and fusedDown name the Hugging Face fused tensors when they
	// are not experts.gate_up_proj and experts.down_proj (Granite).
	gateUp, fusedDown string
}

var swigluNames = expertNames{gate: "gate_proj", up: "up_proj", down: "down_proj"}

// fused returns the names of the fused [E, 2I, H] gate/up and [E, H, I]
// down tensors.
func (n expertNames) fused() (gateUp, down string) {
	if n.gateUp != "" {
		return n.gateUp, n.fusedDown
	}
	return "experts.gate_up_proj", "experts.down_proj"
}

// loadExperts reads a layer's n routed experts of intermediate size inter,
// or, when loading lazily, only describes where they are.
func loadExperts(w *weights, layer int, p string, n, inter int, names expertNames) graph.ExpertSet {
	src := expertSource(w, layer, p, n, inter, names)
	switch {
	case w.err != nil:
		return nil
	case src.unpageable != "" && w.lazy:
		w.fail("%s", src.unpageable)
		return nil
	case w.lazy:
		return src
	case src.unpageable == "":
		return w.residentExperts(src)
	}
	// FP8 or F16 experts: read and converted to float32 matrices.
	h := w.cfg.HiddenSize
	if w.has(p + "switch_mlp.gate_proj.weight") {
		return &ResidentExperts{
			Gate: w.stack(p+"switch_mlp.gate_proj", n, inter, h),
			Up:   w.stack(p+"switch_mlp.up_proj", n, inter, h),
			Down: w.stack(p+"switch_mlp.down_proj", n, h, inter),
		}
	}
	if gu, dn := names.fused(); w.has(p + gu) {
		return loadFusedExperts(w, p+gu, p+dn, n, inter)
	}
	x := &ResidentExperts{}
	for e := 0; e < n; e++ {
		q := fmt.Sprintf("%sexperts.%d.", p, e)
		x.Gate = append(x.Gate, w.linear(q+names.gate, inter, h))
		x.Up = append(x.Up, w.linear(q+names.up, inter, h))
		x.Down = append(x.Down, w.linear(q+names.down, h, inter))
	}
	return x
}

// softmaxRouting is the top-k-of-softmax routing of Qwen and Mixtral.
func softmaxRouting(c *Config, normalize bool) kernels.Routing {
	return kernels.Routing{TopK: c.NumExpertsPerTok, Normalize: normalize, Scale: 1}
}

// normTopK reads norm_topk_prob with the family's default.
func normTopK(c *Config, def bool) bool {
	if c.NormTopKProb == nil {
		return def
	}
	return *c.NormTopKProb
}

func layerPrefix(p string, l int) string { return fmt.Sprintf("%slayers.%d.", p, l) }

// loadFusedExperts reads Hugging Face's fused expert tensors gateUpName
// ([E, 2I, H] with gate rows first, experts.gate_up_proj) and downName
// ([E, H, I], experts.down_proj).
func loadFusedExperts(w *weights, gateUpName, downName string, n, inter int) *ResidentExperts {
	h := w.cfg.HiddenSize
	gateUp := w.denseStack(gateUpName, n, 2*inter, h)
	down := w.denseStack(downName, n, h, inter)
	x := &ResidentExperts{Down: down}
	for _, m := range gateUp {
		x.Gate = append(x.Gate, &kernels.Matrix{Rows: inter, Cols: h, F32: m.F32[:inter*h]})
		x.Up = append(x.Up, &kernels.Matrix{Rows: inter, Cols: h, F32: m.F32[inter*h:]})
	}
	return x
}

// loadStack reads the parts every family shares (embedding, final norm,
// output head, and each layer's two RMSNorms) and asks block for each
// decoder layer's mixer and feed-forward part; lp is the layer's tensor
// prefix ("model.layers.7.").
func loadStack(w *weights, block func(l int, lp string) (Mixer, FFN)) *Model {
	c := w.cfg
	p := prefixOf(w.ix)
	m := loadCommon(w, p)
	for l := 0; l < c.NumLayers; l++ {
		lp := layerPrefix(p, l)
		mixer, ffn := block(l, lp)
		m.Layers = append(m.Layers, &Layer{
			InputNorm: w.vector(lp+"input_layernorm.weight", c.HiddenSize),
			PostNorm:  w.vector(lp+"post_attention_layernorm.weight", c.HiddenSize),
			Mixer:     mixer,
			FFN:       ffn,
		})
	}
	return m
}

// qwenFFN is the feed-forward part of Qwen-style layer l: moe when the
// layer is sparse, else a dense MLP of intermediate_size.
func qwenFFN(w *weights, l int, lp string, moe func() FFN) FFN {
	if qwenSparse(w.cfg, l) {
		return moe()
	}
	return loadMLP(w, lp+qwenNames.FFN, w.cfg.IntermediateSize)
}

// loadMoE reads the router and routed experts (of intermediate size inter)
// of the MoE block at prefix p, named as n says.
func loadMoE(w *weights, n layerNames, p string, layer int, routing kernels.Routing, inter int) *MoE {
	c := w.cfg
	return &MoE{Layer: layer,
		Router:  w.linear(p+n.Router, c.NumExperts, c.HiddenSize),
		Routing: routing,
		Experts: loadExperts(w, layer, p, c.NumExperts, inter, n.Experts),
	}
}
