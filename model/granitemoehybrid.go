package model

import (
	"encoding/json"
	"math"
)

// Granite 4.0 (granitemoehybrid): layer_types says which layers are Mamba-2
// ("mamba") and which attention ("attention"); every layer's FFN is a
// softmax top-k MoE plus a shared SwiGLU MLP (shared_mlp.input_linear
// holds gate then up rows), or the shared MLP alone when
// num_local_experts is 0 (which MLX files name mlp.gate_proj/up_proj/down_proj). The multipliers are granitemoe's. Attention has
// a rotary embedding only when position_embedding_type is "rope"
// (transformers; the published hybrids say "nope").
func init() { register("granitemoehybrid", loadGraniteMoEHybrid) }

func loadGraniteMoEHybrid(w *weights) *Model {
	c, n := w.cfg, graniteNames
	checkGraniteConfig(w)
	var rope bool
	switch c.PositionEmbeddingType {
	case "rope":
		rope = true
	case "", "nope":
	default:
		w.fail("%s: position_embedding_type %q is not supported (rope or nope)", c.Path, c.PositionEmbeddingType)
	}
	if len(c.LayerTypes) != 0 && len(c.LayerTypes) != c.NumLayers {
		w.fail("%s: layer_types has %d entries for %d layers", c.Path, len(c.LayerTypes), c.NumLayers)
	}
	shape := graniteMamba2Shape(w)
	if w.err != nil {
		return nil
	}
	m := loadStack(w, func(l int, lp string) (Mixer, FFN) {
		var mixer Mixer
		switch kind := graniteLayerType(c, l); kind {
		case "mamba":
			mixer = loadMamba2(w, lp+"mamba.", shape)
		case "attention":
			mixer = loadGraniteAttention(w, lp+n.Attention, rope)
		default:
			w.fail("%s: layer_types[%d] is %q (mamba or attention)", c.Path, l, kind)
			return nil, nil
		}
		if c.NumExperts == 0 && w.has(lp+"mlp.gate_proj.weight") {
			// mlx-lm stores a dense model's shared_mlp as mlp.*_proj.
			return mixer, loadMLP(w, lp+"mlp.", c.SharedIntermediateSize)
		}
		shared := loadGraniteSharedMLP(w, lp+"shared_mlp.")
		if c.NumExperts == 0 {
			return mixer, shared
		}
		moe := loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, true), c.IntermediateSize)
		moe.Shared = shared
		return mixer, moe
	})
	applyGraniteMultipliers(w, m)
	return m
}

// graniteLayerType is layer l's kind; without layer_types every layer is
// Mamba-2 (transformers' default).
func graniteLayerType(c *Config, l int) string {
	if len(c.LayerTypes) == 0 {
		return "mamba"
	}
	return c.LayerTypes[l]
}

// graniteMamba2Shape reads the Mamba-2 sizes: mamba_expand*hidden_size
// channels in mamba_n_heads heads of mamba_d_head ("auto": the quotient).
func graniteMamba2Shape(w *weights) mamba2Shape {
	c := w.cfg
	expand := c.MambaExpand
	if expand == 0 {
		expand = 2
	}
	sh := mamba2Shape{heads: c.MambaHeads, groups: max(c.MambaGroups, 1), stateDim: c.MambaDState,
		convKernel: c.MambaDConv, convBias: c.MambaConvBias == nil || *c.MambaConvBias, projBias: c.MambaProjBias}
	if sh.convKernel == 0 {
		sh.convKernel = 4
	}
	inner := expand * float64(c.HiddenSize)
	if inner != math.Trunc(inner) || inner > maxDim || sh.heads <= 0 || sh.heads > maxDim || sh.stateDim > maxDim || sh.groups > maxDim || sh.convKernel > 1024 {
		w.fail("%s: mamba_expand (%g) * hidden_size must be a whole number of channels, and mamba_n_heads (%d), mamba_d_state (%d), mamba_n_groups (%d), mamba_d_conv (%d) in range",
			c.Path, expand, sh.heads, sh.stateDim, sh.groups, sh.convKernel)
		return sh
	}
	var headDim any
	if len(c.MambaHeadDim) > 0 {
		if err := json.Unmarshal(c.MambaHeadDim, &headDim); err != nil {
			w.fail("%s: mamba_d_head: %v", c.Path, err)
			return sh
		}
	}
	switch v := headDim.(type) {
	case nil, string:
		if s, ok := v.(string); ok && s != "auto" {
			w.fail("%s: mamba_d_head %q is not a number or \"auto\"", c.Path, s)
		}
		sh.headDim = int(inner) / sh.heads
	case float64:
		sh.headDim = int(v)
	}
	if sh.headDim*sh.heads != int(inner) {
		w.fail("%s: mamba_n_heads (%d) * mamba_d_head (%d) must be mamba_expand * hidden_size (%d)", c.Path, sh.heads, sh.headDim, int(inner))
	}
	if c.MambaNormBeforeGate {
		w.fail("%s: mamba_norm_before_gate true is not supported (transformers gates before the norm)", c.Path)
	}
	switch len(c.TimeStepLimit) {
	case 0:
	case 2:
		sh.dtMin, sh.dtMax = float32(c.TimeStepLimit[0]), float32(c.TimeStepLimit[1])
		if sh.dtMax <= sh.dtMin || math.IsInf(float64(sh.dtMax), 1) {
			sh.dtMax = 0 // no upper limit
		}
	default:
		w.fail("%s: time_step_limit must be [min, max], got %v", c.Path, c.TimeStepLimit)
	}
	return sh
}

// loadGraniteSharedMLP reads the shared SwiGLU MLP: input_linear [2S, H]
// (gate rows, then up) and output_linear [H, S].
func loadGraniteSharedMLP(w *weights, p string) *MLP {
	c := w.cfg
	s := c.SharedIntermediateSize
	in := w.linear(p+"input_linear", 2*s, c.HiddenSize)
	out := w.linear(p+"output_linear", c.HiddenSize, s)
	if w.err != nil {
		return nil
	}
	return &MLP{Gate: rowBlock(in, 0, s), Up: rowBlock(in, s, s), Down: out}
}
