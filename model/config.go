package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// Config is the union of the config.json keys the supported families use.
// Families read what they need; ParseConfig fills the aliases different
// families use for the same quantity (num_experts, n_routed_experts,
// num_local_experts).
type Config struct {
	ModelType             string  `json:"model_type"`
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	MoEIntermediateSize   int     `json:"moe_intermediate_size"`
	SharedIntermediate    int     `json:"shared_expert_intermediate_size"`
	NumLayers             int     `json:"num_hidden_layers"`
	NumHeads              int     `json:"num_attention_heads"`
	NumKVHeads            int     `json:"num_key_value_heads"`
	HeadDim               int     `json:"head_dim"`
	RMSNormEps            float64 `json:"rms_norm_eps"`
	RopeTheta             float64 `json:"rope_theta"`
	PartialRotaryFactor   float64 `json:"partial_rotary_factor"`
	RopeScaling           *RopeScaling
	MaxPositions          int   `json:"max_position_embeddings"`
	TieWordEmbeddings     bool  `json:"tie_word_embeddings"`
	AttentionBias         bool  `json:"attention_bias"`
	QKVBias               *bool `json:"qkv_bias"`
	UseQKNorm             bool  `json:"use_qk_norm"`
	NumExperts            int   `json:"num_experts"`
	NumRoutedExperts      int   `json:"n_routed_experts"`
	NumLocalExperts       int   `json:"num_local_experts"`
	NumExpertsPerTok      int   `json:"num_experts_per_tok"`
	NormTopKProb          *bool `json:"norm_topk_prob"`
	DecoderSparseStep     int   `json:"decoder_sparse_step"`
	MLPOnlyLayers         []int `json:"mlp_only_layers"`
	NumSharedExperts      int   `json:"n_shared_experts"`
	FirstKDenseReplace    int   `json:"first_k_dense_replace"`
	NGroup                int   `json:"n_group"`
	TopKGroup             int   `json:"topk_group"`
	RoutedScalingFactor   float64
	LayerTypes            []string `json:"layer_types"`
	FullAttentionInterval int      `json:"full_attention_interval"`

	// Gated DeltaNet (Qwen3-Next, Qwen3.5).
	LinearConvKernel   int `json:"linear_conv_kernel_dim"`
	LinearKeyHeadDim   int `json:"linear_key_head_dim"`
	LinearValueHeadDim int `json:"linear_value_head_dim"`
	LinearNumKeyHeads  int `json:"linear_num_key_heads"`
	LinearNumValHeads  int `json:"linear_num_value_heads"`

	// Multi-head latent attention (DeepSeek-V3, GLM-4.7-Flash).
	QLoraRank     int `json:"q_lora_rank"`
	KVLoraRank    int `json:"kv_lora_rank"`
	QKNopeHeadDim int `json:"qk_nope_head_dim"`
	QKRopeHeadDim int `json:"qk_rope_head_dim"`
	VHeadDim      int `json:"v_head_dim"`
	// RopeInterleave: nil (missing) means true, the default of both
	// families in transformers (and mlx-lm always interleaves).
	RopeInterleave *bool `json:"rope_interleave"`
	// MLPLayerTypes ("dense"/"sparse" per layer, GLM-4.7-Flash) when set.
	MLPLayerTypes []string `json:"mlp_layer_types"`

	// Hunyuan-A13B (hunyuan_v1_moe): moe_topk is its num_experts_per_tok
	// (ParseConfig copies it); the shared MLP (use_mixed_mlp_moe) is
	// num_shared_expert times intermediate_size wide; cross-layer attention
	// (use_cla, cla_share_factor) changes nothing, as in transformers.
	MoETopK         int   `json:"moe_topk"`
	NumSharedExpert int   `json:"num_shared_expert"`
	UseMixedMLPMoE  *bool `json:"use_mixed_mlp_moe"`
	UseCLA          bool  `json:"use_cla"`
	CLAShareFactor  int   `json:"cla_share_factor"`
	// MiniMax-M2 (minimax_m2): rotary_dim (default head_dim/2) is the
	// partial rotary width; the loader refuses the variants it does not
	// run (another scoring_func or qk_norm_type, lightning-attention layers
	// in attn_type_list, a shared expert).
	RotaryDim              int    `json:"rotary_dim"`
	ScoringFunc            string `json:"scoring_func"`
	QKNormType             string `json:"qk_norm_type"`
	AttnTypeList           []int  `json:"attn_type_list"`
	SharedIntermediateSize int    `json:"shared_intermediate_size"`

	// PhiMoE (Phi-3.5-MoE). RouterJitterNoise is sparsemixer's eps (nil:
	// transformers' default 0.01); SlidingWindow nil means none.
	RouterJitterNoise    *float64 `json:"router_jitter_noise"`
	LMHeadBias           bool     `json:"lm_head_bias"`
	SlidingWindow        *int     `json:"sliding_window"`
	OriginalMaxPositions int      `json:"original_max_position_embeddings"`
	HiddenAct            string   `json:"hidden_act"`

	// Jamba (Mamba-1 layers interleaved with attention, MoE every
	// expert_layer_period-th layer). The mamba_* keys are shared with
	// Granite 4.0's Mamba-2 layers (one field per key).
	AttnLayerPeriod   int     `json:"attn_layer_period"`
	AttnLayerOffset   int     `json:"attn_layer_offset"`
	ExpertLayerPeriod int     `json:"expert_layer_period"`
	ExpertLayerOffset int     `json:"expert_layer_offset"`
	MambaDState       int     `json:"mamba_d_state"`
	MambaDConv        int     `json:"mamba_d_conv"`
	MambaExpand       float64 `json:"mamba_expand"`
	// MambaDtRank is a number or "auto" (ceil(hidden_size/16)).
	MambaDtRank   any   `json:"mamba_dt_rank"`
	MambaConvBias *bool `json:"mamba_conv_bias"`
	MambaProjBias bool  `json:"mamba_proj_bias"`
	// (hidden_act: PhiMoE's HiddenAct above.)

	// Granite 3.x MoE and Granite 4.0 hybrid (granitemoe, granitemoehybrid):
	// the muP multipliers, the shared MLP (shared_intermediate_size, above),
	// and the Mamba-2 layers (mamba_d_state, mamba_d_conv, mamba_expand and
	// the biases shared with Jamba, above).
	EmbeddingMultiplier   float64         `json:"embedding_multiplier"`
	ResidualMultiplier    float64         `json:"residual_multiplier"`
	AttentionMultiplier   float64         `json:"attention_multiplier"`
	LogitsScaling         float64         `json:"logits_scaling"`
	PositionEmbeddingType string          `json:"position_embedding_type"`
	MambaHeads            int             `json:"mamba_n_heads"`
	MambaHeadDim          json.RawMessage `json:"mamba_d_head"` // an int or "auto"
	MambaGroups           int             `json:"mamba_n_groups"`
	MambaNormBeforeGate   bool            `json:"mamba_norm_before_gate"`
	TimeStepLimit         []float64       `json:"time_step_limit"`

	// gpt-oss: sliding_window (PhiMoE's SlidingWindow above) is the span of
	// its "sliding_attention" layers; swiglu_limit the experts' clamp
	// (transformers fixes it at 7).
	SwiGLULimit *float64 `json:"swiglu_limit"`

	Quant Quantization
	// Path is the config.json this came from, for error messages.
	Path string `json:"-"`
}

// RopeScaling is the rope_scaling block (YaRN and friends).
type RopeScaling struct {
	Type                          string  `json:"type"`
	RopeType                      string  `json:"rope_type"`
	Factor                        float64 `json:"factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
	BetaFast                      float64 `json:"beta_fast"`
	BetaSlow                      float64 `json:"beta_slow"`
	MScale                        float64 `json:"mscale"`
	MScaleAllDim                  float64 `json:"mscale_all_dim"`
	RopeTheta                     float64 `json:"rope_theta"`
	PartialRotaryFactor           float64 `json:"partial_rotary_factor"`
	// Alpha is Hunyuan's "dynamic" NTK scaling: the rope base becomes
	// rope_theta * alpha^(d/(d-2)) for rotary width d.
	Alpha float64 `json:"alpha"`

	// LongRoPE (PhiMoE): per-frequency divisors and cos/sin factors below
	// and above original_max_position_embeddings.
	ShortFactor []float64 `json:"short_factor"`
	LongFactor  []float64 `json:"long_factor"`
	ShortMScale *float64  `json:"short_mscale"`
	LongMScale  *float64  `json:"long_mscale"`

	// Truncate (YaRN; nil means true) floors and ceils the correction range.
	Truncate *bool `json:"truncate"`
}

// slidingWindow is sliding_window, or 0 when the config has none.
func (c *Config) slidingWindow() int {
	if c.SlidingWindow == nil {
		return 0
	}
	return *c.SlidingWindow
}

// Kind returns the normalised scaling type ("" when there is none).
func (r *RopeScaling) Kind() string {
	if r == nil {
		return ""
	}
	if r.RopeType != "" {
		return r.RopeType
	}
	return r.Type
}

// QuantParams is the quantization of one module: MLX affine, or, when
// Mode names one, a microscaling float format (kernels.MXMode).
type QuantParams struct {
	GroupSize int    `json:"group_size"`
	Bits      int    `json:"bits"`
	Mode      string `json:"mode"`
}

// MX is the module's microscaling format (0 for affine quantization).
func (p QuantParams) MX() kernels.MXMode {
	m, _ := kernels.ParseMXMode(p.Mode)
	return m
}

// Quantization holds the checkpoint-wide default and per-module overrides
// from config.json's "quantization" block. A zero Default means the
// checkpoint is not quantized.
type Quantization struct {
	Default   QuantParams
	Mode      string
	Overrides map[string]QuantParams
	// Skip lists modules that a conversion left unquantized (value false).
	Skip map[string]bool
}

// For returns the parameters of the module with the given prefix
// ("model.layers.0.mlp.gate") and whether it is quantized at all.
func (q *Quantization) For(module string) (QuantParams, bool) {
	if q.Skip[module] {
		return QuantParams{}, false
	}
	if p, ok := q.Overrides[module]; ok {
		return p, true
	}
	return q.Default, q.Default.Bits != 0
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// ParseConfig parses config.json bytes. A multimodal config with the
// language model under "text_config" is flattened to that text config.
func ParseConfig(data []byte) (*Config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	body := data
	if tc, ok := top["text_config"]; ok {
		// Keys of the outer config (quantization, tie_word_embeddings) apply
		// unless the text config sets them itself.
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(tc, &inner); err != nil {
			return nil, fmt.Errorf("text_config: %v", err)
		}
		for k, v := range top {
			if _, set := inner[k]; !set && k != "text_config" && k != "model_type" {
				inner[k] = v
			}
		}
		if outer, ok := top["model_type"]; ok {
			inner["outer_model_type"] = outer
		}
		body, _ = json.Marshal(inner)
		top = inner
	}
	if flat, changed, err := flattenPerLayer(top); err != nil {
		return nil, err
	} else if changed {
		body, _ = json.Marshal(flat)
		top = flat
	}
	var c Config
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("bad field: %v", err)
	}
	if c.ModelType == "" {
		return nil, fmt.Errorf("model_type is missing")
	}
	if raw, ok := top["rope_scaling"]; ok && string(raw) != "null" {
		c.RopeScaling = &RopeScaling{}
		if err := json.Unmarshal(raw, c.RopeScaling); err != nil {
			return nil, fmt.Errorf("rope_scaling: %v", err)
		}
	}
	if raw, ok := top["rope_parameters"]; ok && c.RopeScaling == nil && string(raw) != "null" {
		// transformers 5 moved rope settings here.
		var rp RopeScaling
		if err := json.Unmarshal(raw, &rp); err == nil {
			if rp.RopeTheta != 0 && c.RopeTheta == 0 {
				c.RopeTheta = rp.RopeTheta
			}
			if rp.PartialRotaryFactor != 0 && c.PartialRotaryFactor == 0 {
				c.PartialRotaryFactor = rp.PartialRotaryFactor
			}
			if k := rp.Kind(); k != "" && k != "default" {
				c.RopeScaling = &rp
			}
		}
	}
	if raw, ok := top["routed_scaling_factor"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &c.RoutedScalingFactor); err != nil {
			return nil, fmt.Errorf("routed_scaling_factor: %v", err)
		}
	}
	if c.RoutedScalingFactor == 0 {
		c.RoutedScalingFactor = 1
	}
	if raw, ok := top["quantization"]; ok {
		if err := parseQuant(raw, &c.Quant); err != nil {
			return nil, fmt.Errorf("quantization: %v", err)
		}
	} else if raw, ok := top["quantization_config"]; ok {
		if err := parseQuant(raw, &c.Quant); err != nil {
			return nil, fmt.Errorf("quantization_config: %v", err)
		}
	}
	if c.NumExperts == 0 {
		c.NumExperts = max(c.NumRoutedExperts, c.NumLocalExperts)
	}
	if c.NumExpertsPerTok == 0 {
		c.NumExpertsPerTok = c.MoETopK
	}
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.PartialRotaryFactor == 0 {
		c.PartialRotaryFactor = 1
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	return &c, c.validate()
}

func parseQuant(raw json.RawMessage, q *Quantization) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	q.Overrides = map[string]QuantParams{}
	q.Skip = map[string]bool{}
	for k, v := range m {
		switch k {
		case "group_size":
			if err := json.Unmarshal(v, &q.Default.GroupSize); err != nil {
				return fmt.Errorf("group_size: %v", err)
			}
		case "bits":
			if err := json.Unmarshal(v, &q.Default.Bits); err != nil {
				return fmt.Errorf("bits: %v", err)
			}
		case "mode":
			if err := json.Unmarshal(v, &q.Mode); err != nil {
				return fmt.Errorf("mode: %v", err)
			}
		default:
			s := strings.TrimSpace(string(v))
			if s == "false" {
				q.Skip[k] = true
				continue
			}
			if !strings.HasPrefix(s, "{") {
				continue // quant_method and other informational keys
			}
			var p QuantParams
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("%s: %v", k, err)
			}
			q.Overrides[k] = p
		}
	}
	q.Default.Mode = q.Mode
	for name, p := range q.Overrides {
		if mx, ok := kernels.ParseMXMode(q.Mode); ok && p.Mode == "" && p.Bits == mx.Bits() && p.GroupSize == mx.GroupSize() {
			// An override without a mode is affine unless it has the
			// default microscaling mode's own bits and group size.
			p.Mode = q.Mode
			q.Overrides[name] = p
		}
		if err := p.check(); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	if q.Default.Bits != 0 || q.Default.GroupSize != 0 {
		return q.Default.check()
	}
	return nil
}

func (p QuantParams) check() error {
	if p.Mode != "" && p.Mode != "affine" {
		mx, ok := kernels.ParseMXMode(p.Mode)
		if !ok {
			return fmt.Errorf("mode %q is not supported (affine, mxfp4, mxfp8 or nvfp4)", p.Mode)
		}
		if p.Bits != mx.Bits() || p.GroupSize != mx.GroupSize() {
			return fmt.Errorf("mode %s needs %d bits in groups of %d, config says %d bits, group size %d",
				p.Mode, mx.Bits(), mx.GroupSize(), p.Bits, p.GroupSize)
		}
		return nil
	}
	switch p.Bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		return fmt.Errorf("%d-bit quantization is not supported (2, 3, 4, 5, 6 or 8)", p.Bits)
	}
	switch p.GroupSize {
	case 32, 64, 128:
	default:
		return fmt.Errorf("group size %d is not supported (32, 64 or 128)", p.GroupSize)
	}
	return nil
}
