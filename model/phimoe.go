package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// PhiMoE (Phi-3.5-MoE, model_type "phimoe"), as transformers' PhimoeModel
// computes it: Mixtral's layout (block_sparse_moe; w1/w3/w2 experts in
// Hugging Face files, switch_mlp in MLX's) with
//
//   - LayerNorms with weight and bias (eps rms_norm_eps) in every layer and
//     before the head, not RMSNorms;
//   - biases on q/k/v/o (attention_bias) and on the head (lm_head_bias);
//   - sparsemixer routing: two experts, each weighted by its softmax
//     probability among the scores close to it (kernels.Routing.SparseMixer;
//     mlx-lm's softmax over the top two differs, transformers is followed);
//   - LongRoPE: rotary frequencies divided by short_factor while the
//     sequence is at most original_max_position_embeddings long and by
//     long_factor beyond, cos/sin times short_mscale or long_mscale.
func init() { register("phimoe", loadPhiMoE) }

// phiMoENames: Mixtral's names (the MLX layout stacks the experts as
// switch_mlp.gate_proj/up_proj/down_proj, as Mixtral's MLX files do).
var phiMoENames = mixtralNames

func loadPhiMoE(w *weights) *Model {
	c, n := w.cfg, phiMoENames
	checkPhiMoE(w)
	if w.err != nil {
		return nil
	}
	jitter := 0.01 // transformers' default router_jitter_noise
	if c.RouterJitterNoise != nil {
		jitter = *c.RouterJitterNoise
	}
	routing := kernels.Routing{TopK: 2, SparseMixer: true, JitterEps: float32(jitter)}
	var short, long *kernels.RopeParams
	orig := 0
	if c.RopeScaling.Kind() == "longrope" {
		var err error
		if short, long, orig, err = longRoPE(c, c.HeadDim); err != nil {
			w.fail("%s: %v", c.Path, err)
			return nil
		}
	}
	m := loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadPhiAttention(w, lp+n.Attention, short, long),
			loadMoE(w, n, lp+n.FFN, l, routing, c.IntermediateSize)
	})
	if w.err != nil {
		return nil
	}
	p := prefixOf(w.ix)
	m.LayerNorm = true
	m.NormBias = w.vector(p+"norm.bias", c.HiddenSize)
	for l, layer := range m.Layers {
		lp := layerPrefix(p, l)
		layer.InputNormBias = w.vector(lp+"input_layernorm.bias", c.HiddenSize)
		layer.PostNormBias = w.vector(lp+"post_attention_layernorm.bias", c.HiddenSize)
	}
	if c.LMHeadBias {
		m.HeadBias = w.vector(headName(w, p)+".bias", c.VocabSize)
	}
	m.RopeSwitch = orig
	return m
}

// checkPhiMoE rejects the config options this engine does not implement,
// naming the field.
func checkPhiMoE(w *weights) {
	c := w.cfg
	switch {
	case c.NumExpertsPerTok != 2:
		w.fail("%s: num_experts_per_tok is %d; phimoe's sparsemixer routes every token to exactly 2 experts", c.Path, c.NumExpertsPerTok)
	case c.NumExperts < 2:
		w.fail("%s: num_local_experts is %d; sparsemixer needs at least 2", c.Path, c.NumExperts)
	case c.HiddenAct != "" && c.HiddenAct != "silu":
		w.fail("%s: hidden_act %q is not supported for phimoe (silu is)", c.Path, c.HiddenAct)
	case c.SlidingWindow != nil && c.MaxPositions > 0 && *c.SlidingWindow < c.MaxPositions:
		w.fail("%s: sliding_window %d (below max_position_embeddings %d) is not supported for phimoe", c.Path, *c.SlidingWindow, c.MaxPositions)
	case c.RouterJitterNoise != nil && !(*c.RouterJitterNoise >= 0):
		w.fail("%s: router_jitter_noise must not be negative, got %g", c.Path, *c.RouterJitterNoise)
	}
}

// phiAttention is attention under LongRoPE: short and long are the same
// projections with the two rotary tables; a pass uses the one the runner
// chose for it (Runner.ropeTable).
type phiAttention struct {
	short, long *Attention
}

// loadPhiAttention reads the attention block at prefix p: plain Attention
// (rotary as ropeFor says) without LongRoPE, else phiAttention with its
// short and long tables.
func loadPhiAttention(w *weights, p string, short, long *kernels.RopeParams) Mixer {
	c := w.cfg
	o := attentionOptions{bias: c.AttentionBias, outBias: c.AttentionBias, rope: short}
	a := loadAttention(w, p, o)
	if long == nil {
		return a
	}
	la := *a
	la.Rope = long
	return &phiAttention{short: a, long: &la}
}

// longRoPE builds the short and long rotary tables of rope_scaling type
// "longrope" as transformers' _compute_longrope_parameters does, with the
// cos/sin factors short_mscale and long_mscale (the default attention
// factor sqrt(1+ln(s)/ln(orig)), s = max_position_embeddings/orig, where a
// config lacks them).
func longRoPE(c *Config, headDim int) (short, long *kernels.RopeParams, orig int, err error) {
	rs := c.RopeScaling
	orig = rs.OriginalMaxPositionEmbeddings
	if orig == 0 {
		orig = c.OriginalMaxPositions
	}
	if orig <= 0 {
		return nil, nil, 0, fmt.Errorf("rope_scaling (longrope) needs original_max_position_embeddings")
	}
	dim := int(float64(headDim) * c.PartialRotaryFactor)
	attention := 1.0
	if s := float64(c.MaxPositions) / float64(orig); s > 1 {
		attention = math.Sqrt(1 + math.Log(s)/math.Log(float64(orig)))
	}
	table := func(name string, factors []float64, mscale *float64) (*kernels.RopeParams, error) {
		if len(factors) != dim/2 {
			return nil, fmt.Errorf("rope_scaling.%s has %d entries, the rotary dimension %d needs %d", name, len(factors), dim, dim/2)
		}
		p := &kernels.RopeParams{RotaryDim: dim, InvFreq: make([]float32, dim/2), Scale: float32(attention)}
		if mscale != nil {
			p.Scale = float32(*mscale)
		}
		for i, f := range factors {
			if !(f > 0) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("rope_scaling.%s[%d] must be positive, got %g", name, i, f)
			}
			// transformers: 1/(factor * base^(2i/dim)) in float32.
			expo := float32(2*i) / float32(dim)
			p.InvFreq[i] = float32(1 / (float64(float32(f)) * math.Pow(c.RopeTheta, float64(expo))))
		}
		if !(p.Scale > 0) || math.IsInf(float64(p.Scale), 0) {
			return nil, fmt.Errorf("rope_scaling.%s's mscale must be positive, got %g", name, p.Scale)
		}
		return p, nil
	}
	if short, err = table("short_factor", rs.ShortFactor, rs.ShortMScale); err != nil {
		return nil, nil, 0, err
	}
	if long, err = table("long_factor", rs.LongFactor, rs.LongMScale); err != nil {
		return nil, nil, 0, err
	}
	return short, long, orig, nil
}

func (a *phiAttention) StateBytes(maxLen int, f kernels.KVFormat) int64 {
	return a.short.StateBytes(maxLen, f)
}

func (a *phiAttention) newState(e graph.Executor, maxLen int, f kernels.KVFormat) MixerState {
	return a.short.newState(e, maxLen, f)
}

func (a *phiAttention) plan(s *scratch) { a.short.plan(s) }

func (a *phiAttention) forward(r *run, out, x *graph.Tensor, st MixerState) error {
	if r.longRope {
		return a.long.forward(r, out, x, st)
	}
	return a.short.forward(r, out, x, st)
}

// ropeTable picks the rotary table of a pass appending ids to c in a
// LongRoPE model: the long one when the sequence will be longer than
// RopeSwitch. transformers chooses by the largest position of each
// forward, and generate recomputes the whole sequence when it crosses
// over, so when the cached positions were made with the other table they
// are recomputed too: ropeTable then returns the cached ids followed by
// ids, with c emptied, and skip, the number of positions prepended.
func (rn *Runner) ropeTable(c *Cache, ids []int32) (all []int32, skip int, err error) {
	sw := rn.M.RopeSwitch
	if sw == 0 {
		return ids, 0, nil
	}
	if len(c.ids) < c.Len {
		return nil, 0, fmt.Errorf("the cache holds %d positions but the ids of only %d: LongRoPE cannot recompute them (a cache not made by NewCache?)", c.Len, len(c.ids))
	}
	long := c.Len+len(ids) > sw
	if c.Len > 0 && long != c.longRope {
		all = append(slices.Clone(c.ids[:c.Len]), ids...)
		skip, c.Len = c.Len, 0
	} else {
		all = ids
	}
	c.longRope, rn.run.longRope = long, long
	return all, skip, nil
}
