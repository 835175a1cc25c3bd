package model

import (
	"fmt"
	"math"
)

// Jamba (AI21): Mamba-1 layers with attention every attn_layer_period-th
// layer (from attn_layer_offset), and a softmax-routed MoE every
// expert_layer_period-th layer (from expert_layer_offset; the others a
// dense SwiGLU MLP). Attention has no positional embedding (the Mamba
// layers carry position), no biases and no q/k norm; routing keeps the
// softmax weights of the top-k experts without renormalising them. The
// layer norms are input_layernorm and pre_ff_layernorm, the final one
// final_layernorm.
//
// Hugging Face files store one module per expert
// (feed_forward.experts.E.gate_proj) and conv1d as [C, 1, K]; MLX files
// stack the experts (feed_forward.switch_mlp.gate_proj) and store conv1d
// as [C, K, 1].
func init() { register("jamba", loadJamba) }

var jambaNames = layerNames{
	Attention: "self_attn.",
	FFN:       "feed_forward.",
	Router:    "router",
	Experts:   swigluNames,
}

func loadJamba(w *weights) *Model {
	c := w.cfg
	shape, err := jambaShape(c)
	if err != nil {
		w.fail("%s: %v", c.Path, err)
		return &Model{}
	}
	p := prefixOf(w.ix)
	m := &Model{Embed: w.linear(p+"embed_tokens", c.VocabSize, c.HiddenSize)}
	m.Norm = w.vector(p+"final_layernorm.weight", c.HiddenSize)
	m.Head = loadHead(w, p, m.Embed)
	n := jambaNames
	for l := 0; l < c.NumLayers; l++ {
		lp := layerPrefix(p, l)
		layer := &Layer{
			InputNorm: w.vector(lp+"input_layernorm.weight", c.HiddenSize),
			PostNorm:  w.vector(lp+"pre_ff_layernorm.weight", c.HiddenSize),
		}
		if l%c.AttnLayerPeriod == c.AttnLayerOffset {
			a := loadAttention(w, lp+n.Attention, attentionOptions{})
			a.Rope = nil // Jamba's attention has no positional embedding
			layer.Mixer = a
		} else {
			layer.Mixer = loadMamba1(w, lp+"mamba.", shape)
		}
		if c.NumExperts > 1 && l%c.ExpertLayerPeriod == c.ExpertLayerOffset {
			layer.FFN = loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, false), c.IntermediateSize)
		} else {
			layer.FFN = loadMLP(w, lp+n.FFN, c.IntermediateSize)
		}
		m.Layers = append(m.Layers, layer)
	}
	return m
}

// jambaShape reads the Mamba-1 sizes from the config and rejects what the
// engine does not implement, naming the field.
func jambaShape(c *Config) (Mamba1, error) {
	s := Mamba1{Channels: int(c.MambaExpand * float64(c.HiddenSize)), DState: c.MambaDState, ConvKernel: c.MambaDConv, Eps: float32(c.RMSNormEps)}
	switch r := c.MambaDtRank.(type) {
	case nil:
		s.DtRank = (c.HiddenSize + 15) / 16
	case string:
		if r != "auto" {
			return s, fmt.Errorf("mamba_dt_rank %q is neither a number nor \"auto\"", r)
		}
		s.DtRank = (c.HiddenSize + 15) / 16
	case float64:
		if r != math.Trunc(r) {
			return s, fmt.Errorf("mamba_dt_rank %v is not a whole number", r)
		}
		s.DtRank = int(r)
	default:
		return s, fmt.Errorf("mamba_dt_rank %v is neither a number nor \"auto\"", r)
	}
	switch {
	case c.HiddenAct != "" && c.HiddenAct != "silu":
		return s, fmt.Errorf("hidden_act %q is not supported (silu is)", c.HiddenAct)
	case c.AttnLayerPeriod <= 0 || c.AttnLayerOffset < 0 || c.AttnLayerOffset >= c.AttnLayerPeriod:
		return s, fmt.Errorf("attn_layer_offset (%d) must be in [0, attn_layer_period (%d))", c.AttnLayerOffset, c.AttnLayerPeriod)
	case c.ExpertLayerPeriod <= 0 || c.ExpertLayerOffset < 0 || c.ExpertLayerOffset >= c.ExpertLayerPeriod:
		return s, fmt.Errorf("expert_layer_offset (%d) must be in [0, expert_layer_period (%d))", c.ExpertLayerOffset, c.ExpertLayerPeriod)
	case c.MambaExpand != math.Trunc(c.MambaExpand):
		return s, fmt.Errorf("mamba_expand %v is not a whole number", c.MambaExpand)
	case c.MambaExpand <= 0 || c.MambaDState <= 0 || c.MambaDConv <= 0 || s.DtRank <= 0:
		return s, fmt.Errorf("mamba_expand (%v), mamba_d_state (%d), mamba_d_conv (%d) and mamba_dt_rank (%d) must be positive",
			c.MambaExpand, c.MambaDState, c.MambaDConv, s.DtRank)
	}
	return s, nil
}
