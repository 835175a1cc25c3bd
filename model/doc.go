// Package model turns a checkpoint directory (config.json plus safetensors
// shards, in mlx-community MLX layout or Hugging Face layout) into a Model
// that runs on a graph.Executor.
//
// A family (qwen3_moe.go, mixtral.go, ...) is one file: it reads the
// config, names its tensors and assembles the layer stack from the shared
// blocks (attention, MoE, dense MLP, ...), and registers itself by
// model_type. A Runner runs forward passes of a model on one executor, with
// the scratch tensors every block asked for planned when it is made.
//
// A pass may carry several sequences (Runner.ForwardBatch, one Segment
// each; Forward is the one-segment case): its rows are the segments' new
// tokens, each at its own position. Norms, projections and the MoE run
// over all rows at once (the routed experts over their union); what reads
// a sequence's state (KV cache store and attention, conv and delta-rule
// scan) runs per segment on views of its rows. A mixer written for one
// sequence runs batched unchanged, once per segment (run.mix).
//
// Routed experts have one description for every policy: an ExpertSource
// (expert_source.go) lists each expert's byte ranges in the checkpoint, in
// any of its layouts (stacked switch_mlp, fused gate_up_proj, one module
// per expert), and Views turns memory holding those ranges back into
// matrices. The policies differ only in where that memory is: resident
// reads every expert once into an executor buffer, os maps the files, and
// the pager (paged.go) reads experts into slots on demand. A new expert
// layout is taught once, in expertSource.
//
// Safetensors headers are parsed here rather than with
// github.com/nlpodyssey/safetensors, which the design card named: that
// library maps the whole file before it can read a header and rejects
// F8_E4M3, while the expert pager needs header-only parsing and absolute
// file offsets for pread. The parser is one small file (safetensors.go).
//
// # Adding a family
//
//  1. Add the config.json fields the family needs to Config (config.go), if
//     it has new ones.
//  2. Write <family>.go: an init that registers the model_type, the
//     family's layerNames table (names.go: where its attention, FFN, router
//     and experts are; reuse qwenNames or deepSeekNames when they fit), and
//     a loader that calls loadStack with, per layer, its Mixer and FFN built
//     from the shared blocks (loadAttention with attentionOptions, loadMLP,
//     loadMoE with its Routing, loadMLA, GatedDeltaNet). Fused
//     projections whose parts interleave per head are regrouped once at load
//     with splitRows (rows.go), so every part is a contiguous matrix; see
//     loadQwen3NextDeltaNet.
//  3. A block the shared ones do not cover implements Mixer (StateBytes,
//     newState, plan, forward) or FFN (plan, forward): plan asks the
//     runner's scratch for exactly the tensors forward uses (one scratch
//     method serves both), and forward issues graph ops on them and on
//     views of its state, never allocating. Its MixerState says whether it
//     is per position (rewindable), how it resets and frees. forward sees
//     one sequence at a time; to run its dense parts over a whole batch,
//     a mixer also implements segmentMixer (see Attention).
//  4. Add a fixture with a reference.json from transformers; TestFixtures
//     compares every layer, the routing and the logits, and
//     TestDecodeStepOps / TestDecodeStepAllocatesNothing check that a decode
//     step allocates nothing.
package model
