package model

import (
	"fmt"
	"math"
)

// maxDim bounds every size in config.json. It is far above any real model
// (the largest vocabularies are ~260k, hidden sizes ~16k) and keeps the
// products the loader forms (heads*head_dim, experts*intermediate, ...)
// from overflowing.
const maxDim = 1 << 24

// maxLayers and maxExperts bound the counts the loader walks one by one
// before it can tell that tensors are missing (the deepest models have
// ~100 layers, the widest ~500 experts per layer).
const (
	maxLayers  = 1 << 12
	maxExperts = 1 << 14
)

// validate checks every config.json field the loader, the caches and the
// kernels divide, index or allocate by, so that a bad config is an error
// naming the field and never a panic or a silent wrong answer. It runs
// after ParseConfig has filled the defaults and aliases.
func (c *Config) validate() error {
	type intField struct {
		name     string
		v        int
		required bool // must be positive; else zero means "not used"
	}
	for _, f := range []intField{
		{"vocab_size", c.VocabSize, true},
		{"hidden_size", c.HiddenSize, true},
		{"num_hidden_layers", c.NumLayers, true},
		{"num_attention_heads", c.NumHeads, true},
		{"num_key_value_heads", c.NumKVHeads, true},
		{"head_dim", c.HeadDim, true},
		{"intermediate_size", c.IntermediateSize, false},
		{"moe_intermediate_size", c.MoEIntermediateSize, false},
		{"shared_expert_intermediate_size", c.SharedIntermediate, false},
		{"max_position_embeddings", c.MaxPositions, false},
		{"num_experts", c.NumExperts, false},
		{"n_routed_experts", c.NumRoutedExperts, false},
		{"num_local_experts", c.NumLocalExperts, false},
		{"num_experts_per_tok", c.NumExpertsPerTok, false},
		{"decoder_sparse_step", c.DecoderSparseStep, false},
		{"n_shared_experts", c.NumSharedExperts, false},
		{"first_k_dense_replace", c.FirstKDenseReplace, false},
		{"n_group", c.NGroup, false},
		{"topk_group", c.TopKGroup, false},
		{"full_attention_interval", c.FullAttentionInterval, false},
		{"linear_conv_kernel_dim", c.LinearConvKernel, false},
		{"linear_key_head_dim", c.LinearKeyHeadDim, false},
		{"linear_value_head_dim", c.LinearValueHeadDim, false},
		{"linear_num_key_heads", c.LinearNumKeyHeads, false},
		{"linear_num_value_heads", c.LinearNumValHeads, false},
		{"q_lora_rank", c.QLoraRank, false},
		{"kv_lora_rank", c.KVLoraRank, false},
		{"qk_nope_head_dim", c.QKNopeHeadDim, false},
		{"qk_rope_head_dim", c.QKRopeHeadDim, false},
		{"v_head_dim", c.VHeadDim, false},
		{"sliding_window", c.slidingWindow(), false},
	} {
		switch {
		case f.required && f.v <= 0:
			return fmt.Errorf("%s must be a positive integer, got %d", f.name, f.v)
		case f.v < 0:
			return fmt.Errorf("%s must not be negative, got %d", f.name, f.v)
		case f.v > maxDim && f.name != "max_position_embeddings":
			return fmt.Errorf("%s %d is larger than any model's (at most %d)", f.name, f.v, maxDim)
		}
	}
	if c.NumLayers > maxLayers {
		return fmt.Errorf("num_hidden_layers %d is more than any model's (at most %d)", c.NumLayers, maxLayers)
	}
	if c.NumExperts > maxExperts {
		return fmt.Errorf("%d experts (num_experts, n_routed_experts or num_local_experts) is more than any model's (at most %d)", c.NumExperts, maxExperts)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if c.NumExperts > 0 && (c.NumExpertsPerTok < 1 || c.NumExpertsPerTok > c.NumExperts) {
		return fmt.Errorf("num_experts_per_tok (top-k) must be between 1 and the number of experts %d, got %d", c.NumExperts, c.NumExpertsPerTok)
	}
	if err := c.validateGroups(); err != nil {
		return err
	}
	if err := c.validateFloats(); err != nil {
		return err
	}
	if c.LinearNumKeyHeads > 0 && c.LinearNumValHeads%c.LinearNumKeyHeads != 0 {
		return fmt.Errorf("linear_num_value_heads %d is not a multiple of linear_num_key_heads %d", c.LinearNumValHeads, c.LinearNumKeyHeads)
	}
	if len(c.LayerTypes) != 0 && len(c.LayerTypes) != c.NumLayers {
		return fmt.Errorf("layer_types has %d entries, num_hidden_layers is %d", len(c.LayerTypes), c.NumLayers)
	}
	for _, l := range c.MLPOnlyLayers {
		if l < 0 || l >= c.NumLayers {
			return fmt.Errorf("mlp_only_layers names layer %d; layers are 0..%d", l, c.NumLayers-1)
		}
	}
	return nil
}

// validateGroups checks grouped routing (DeepSeek-V3, GLM-4): experts split
// evenly into n_group groups, topk_group of them kept, and enough experts in
// the kept groups for top-k.
func (c *Config) validateGroups() error {
	if c.NGroup <= 1 || c.NumExperts == 0 {
		return nil
	}
	if c.NumExperts%c.NGroup != 0 {
		return fmt.Errorf("n_group %d does not divide the %d experts", c.NGroup, c.NumExperts)
	}
	if c.TopKGroup < 1 || c.TopKGroup > c.NGroup {
		return fmt.Errorf("topk_group must be between 1 and n_group %d, got %d", c.NGroup, c.TopKGroup)
	}
	if kept := c.TopKGroup * (c.NumExperts / c.NGroup); kept < c.NumExpertsPerTok {
		return fmt.Errorf("topk_group %d keeps %d experts, fewer than num_experts_per_tok %d", c.TopKGroup, kept, c.NumExpertsPerTok)
	}
	return nil
}

// validateFloats checks the real-valued fields: a norm epsilon of zero or
// below turns a zero row into NaN, a non-positive rope base into NaN
// frequencies.
func (c *Config) validateFloats() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(c.RMSNormEps) || c.RMSNormEps <= 0 {
		return fmt.Errorf("rms_norm_eps must be positive, got %g", c.RMSNormEps)
	}
	if !finite(c.RopeTheta) || c.RopeTheta <= 0 {
		return fmt.Errorf("rope_theta must be positive, got %g", c.RopeTheta)
	}
	if !finite(c.PartialRotaryFactor) || c.PartialRotaryFactor <= 0 || c.PartialRotaryFactor > 1 {
		return fmt.Errorf("partial_rotary_factor must be in (0, 1], got %g", c.PartialRotaryFactor)
	}
	if !finite(c.RoutedScalingFactor) || c.RoutedScalingFactor <= 0 {
		return fmt.Errorf("routed_scaling_factor must be positive, got %g", c.RoutedScalingFactor)
	}
	if rs := c.RopeScaling; rs != nil && rs.Kind() == "yarn" {
		if !finite(rs.Factor) || rs.Factor <= 0 {
			return fmt.Errorf("rope_scaling.factor must be positive, got %g", rs.Factor)
		}
		if rs.OriginalMaxPositionEmbeddings < 0 {
			return fmt.Errorf("rope_scaling.original_max_position_embeddings must not be negative, got %d", rs.OriginalMaxPositionEmbeddings)
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"beta_fast", rs.BetaFast}, {"beta_slow", rs.BetaSlow}, {"mscale", rs.MScale}, {"mscale_all_dim", rs.MScaleAllDim}} {
			if !finite(f.v) || f.v < 0 {
				return fmt.Errorf("rope_scaling.%s must not be negative, got %g", f.name, f.v)
			}
		}
	}
	return nil
}
