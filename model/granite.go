package model

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Granite 3.x MoE (granitemoe): Llama-style attention and a softmax top-k
// MoE (the top-k logits softmaxed, which is softmax-then-renormalise), with
// the muP multipliers: the embedding is multiplied by embedding_multiplier,
// every block's output by residual_multiplier before the residual add,
// attention scores by attention_multiplier (in place of 1/sqrt(head_dim)),
// and the logits divided by logits_scaling.
//
// Hugging Face files fuse each layer's experts into
// block_sparse_moe.input_linear.weight [E, 2I, H] (gate rows first) and
// output_linear.weight [E, H, I]; MLX files split them into switch_mlp
// gate/up/down_proj. The router is block_sparse_moe.router.layer in both.
func init() { register("granitemoe", loadGraniteMoE) }

var graniteNames = layerNames{
	Attention: "self_attn.",
	FFN:       "block_sparse_moe.",
	Router:    "router.layer",
	Experts: expertNames{gate: "gate_proj", up: "up_proj", down: "down_proj",
		gateUp: "input_linear.weight", fusedDown: "output_linear.weight"},
}

func loadGraniteMoE(w *weights) *Model {
	c, n := w.cfg, graniteNames
	checkGraniteConfig(w)
	m := loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadGraniteAttention(w, lp+n.Attention, true),
			loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, true), c.IntermediateSize)
	})
	applyGraniteMultipliers(w, m)
	return m
}

// checkGraniteConfig rejects the options the Granite families are not
// implemented for, naming the field.
func checkGraniteConfig(w *weights) {
	c := w.cfg
	if c.HiddenAct != "" && c.HiddenAct != "silu" && c.HiddenAct != "swish" {
		w.fail("%s: hidden_act %q is not supported (silu is)", c.Path, c.HiddenAct)
	}
	if c.AttentionBias {
		// Granite's attention_bias includes o_proj, which Attention has no
		// bias for; no published Granite MoE sets it.
		w.fail("%s: attention_bias true is not supported for %s", c.Path, c.ModelType)
	}
	if c.LogitsScaling < 0 || c.EmbeddingMultiplier < 0 || c.ResidualMultiplier < 0 || c.AttentionMultiplier < 0 {
		w.fail("%s: embedding_multiplier, residual_multiplier, attention_multiplier and logits_scaling must not be negative", c.Path)
	}
}

// loadGraniteAttention is standard attention whose scores are scaled by
// attention_multiplier; rope says whether it has a rotary embedding.
func loadGraniteAttention(w *weights, p string, rope bool) *Attention {
	c := w.cfg
	a := loadAttention(w, p, attentionOptions{})
	if c.AttentionMultiplier != 0 {
		a.Scale = float32(c.AttentionMultiplier)
	}
	if !rope {
		a.Rope = &kernels.RopeParams{} // no dimension rotates
	}
	return a
}

// applyGraniteMultipliers sets the embedding and residual multipliers and
// folds 1/logits_scaling into the final norm's weights (the head is linear
// in them, so the logits come out divided).
func applyGraniteMultipliers(w *weights, m *Model) {
	c := w.cfg
	if m == nil || w.err != nil {
		return
	}
	m.EmbedScale = multiplier(c.EmbeddingMultiplier)
	m.ResidualScale = multiplier(c.ResidualMultiplier)
	if c.LogitsScaling != 0 && c.LogitsScaling != 1 {
		for i := range m.Norm {
			m.Norm[i] = float32(float64(m.Norm[i]) / c.LogitsScaling)
		}
	}
}

// multiplier is a config multiplier as a Model scale: 0 (no op) when it is
// absent or 1.
func multiplier(v float64) float32 {
	if v == 0 || v == 1 {
		return 0
	}
	return float32(v)
}

// scaler returns e as a graph.Scaler when the model has multipliers (nil
// when it has none), or an error naming the executor that lacks the op.
func (m *Model) scaler(e graph.Executor) (graph.Scaler, error) {
	if m.EmbedScale == 0 && m.ResidualScale == 0 {
		return nil, nil
	}
	sc, ok := e.(graph.Scaler)
	if !ok {
		return nil, fmt.Errorf("the %s executor cannot scale rows (graph.Scaler), which this model's multipliers need", e.Name())
	}
	return sc, nil
}

// scaleRows multiplies the first n rows of t by s in place; s == 0 means
// no multiplier.
func scaleRows(sc graph.Scaler, t *graph.Tensor, n int, s float32) {
	if s != 0 {
		sc.Scale(t, t, n, s)
	}
}
