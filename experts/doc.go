// Package experts is the SSD expert pager: it keeps a fixed number of each
// MoE layer's routed experts resident in memory slots and reads the others
// from the model files when the router picks them, so that models larger
// than memory run.
//
// # Contract with the engine
//
// At load time the engine describes every MoE layer with a LayerSpec: for
// each expert, the byte extents of its parts in the safetensors files
// (gate/up/down weight, scales, biases, in a fixed order that is the same
// for every expert). NewLayerLayout (and Pager.Layout) says where each part
// lies inside a slot; the executor computes its kernel arguments from it
// once per layer.
//
// It sizes the pager with NewPlan (budget from --memory or AutoBudget,
// capacity per layer, expected hit rate from a profile) and prints the plan,
// then calls New with the specs, the capacity, the policy and a
// SlotAllocator (DefaultAllocator on the CPU; shared-storage buffers on
// Metal, so that kernels read slots and tables in place). The slots start
// empty: LoadWarm restores the resident set of the previous run
// (WarmPath), else Fill loads a profile's most used experts (Profile.Order);
// Pin pins the top --pin of them.
//
// In each decode or prefill step, after the router of layer l chose ids
// (all tokens' choices of the step together), the engine calls
// Resolve(l, ids, slots) and then runs the gather kernels over the pool
// (Pool(l)) with slot = slots[i]:
//
//   - Exact policy: every expert is resident when Resolve returns; the
//     misses of the call are read in parallel.
//   - Fast policy: Resolve never waits; slots[i] = -1 marks an expert that is
//     not resident: the engine drops it and renormalises the remaining
//     weights (keeping routed_scaling_factor). The misses load in the
//     background for later tokens.
//
// Begin is Resolve in two steps for an engine that runs a layer's resident
// experts while its misses load: it hands out every slot at once, Wait(id)
// blocks until one expert is usable, Done until all are (the CPU engine
// asks for each expert in turn, so its sums keep their order).
//
// The experts of a Resolve are not evicted before the next Resolve of the
// same layer: the engine must not call Resolve for a layer while kernels of
// an earlier Resolve of that layer may still read the slots (one forward
// step at a time per pager). Prefetch(l, ids) starts loads without waiting.
// A read error fails the Resolve with an error naming the file and offset;
// the slot stays free and the next call retries. CheckFiles reports model
// files changed on disk since start.
//
// At exit the engine calls SaveWarm and Close. Stats gives per-layer hits,
// misses, loads, bytes, evictions and the read bandwidth, for --verbose and
// the server's metrics. A Recorder counts router choices for `mlx-moe
// profile`; the profile format is described in profiles/README.md.
//
// The os policy has no pager: the engine maps the files with MapFile and
// lets the kernel's page cache decide.
//
// # Eviction
//
// Each layer keeps, per expert, a use count that decays exponentially with
// the number of Resolve calls of the layer (half-life Config.HalfLife).
// A miss takes a free slot, else the slot of the resident expert with the
// lowest decayed count (the least recently used among equals), never a
// pinned expert nor one routed by the current call.
//
// # IO
//
// Loads go through a pool of goroutines (Config.IOWorkers, 16 by default)
// doing pread: a Resolve's misses are split into reads that are all queued
// at once, so that up to IOWorkers are in flight. A read that another caller
// waits for is served before prefetches and background loads. Extents
// adjacent in a file and in the slot are read in one call.
//
// With Config.DirectIO the files are opened with O_DIRECT (F_NOCACHE on
// macOS) so the page cache does not keep a second copy of every expert read
// and the memory budget is real. The slots are then laid out by
// NewDirectLayout: each part whose file offset has the same remainder
// modulo SlotAlign for every expert (every part of a stacked MLX checkpoint
// whose per-expert slices are whole blocks) keeps that remainder inside the
// slot, in blocks of its own, and its block-aligned cover is read straight
// into the slot: no bounce buffer, no copy. Other parts go through an
// aligned bounce buffer (reads merge extents up to 64 KiB apart).
// Stats.DirectIO says where the file system refused O_DIRECT.
//
// Stats says whether a run is disk-bound: bytes read over the time with a
// read in flight (ReadGBps), the mean and largest number of reads in flight,
// the time Resolve waited for reads (LayerStats.IOWait), and how well
// Prefetch predicted (PrefetchPrecision, PrefetchRecall).
//
// Synthetic checkpoints to measure the pager at full scale (`mlx-moe synth`)
// are written by internal/synth.
package experts
