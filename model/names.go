package model

// layerNames says where a family's layer tensors are, relative to the
// layer prefix ("model.layers.7."). Each family declares its table once, in
// its file; the names inside a block (q_proj, gate_proj, conv1d, ...) are
// the block loader's, the same in every family that uses the block, and
// the per-layer norms, embedding and head are loadStack's and loadCommon's.
type layerNames struct {
	Attention       string // softmax or latent attention, "self_attn."
	LinearAttention string // Gated DeltaNet, "linear_attn."
	FFN             string // the dense MLP or MoE block, "mlp."

	// Within the MoE block: the router and its score correction bias, the
	// routed experts and the shared expert with its gate.
	Router, RouterBias string
	Experts            expertNames
	Shared, SharedGate string
}

// qwenNames are the names of the Qwen families (Qwen2-MoE, Qwen3-MoE,
// Qwen3-Next, Qwen3.5) and OLMoE.
var qwenNames = layerNames{
	Attention:       "self_attn.",
	LinearAttention: "linear_attn.",
	FFN:             "mlp.",
	Router:          "gate",
	Experts:         swigluNames,
	Shared:          "shared_expert.",
	SharedGate:      "shared_expert_gate",
}

// deepSeekNames are the names of DeepSeek-V3 and the GLM-4 MoE families.
var deepSeekNames = layerNames{
	Attention:  "self_attn.",
	FFN:        "mlp.",
	Router:     "gate",
	RouterBias: "gate.e_score_correction_bias",
	Experts:    swigluNames,
	Shared:     "shared_experts.",
}
