package mlxmoe

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/model"
)

// ExpertOptions choose how routed experts are held.
type ExpertOptions struct {
	// Policy is "exact" (page experts in on demand; output identical to a
	// fully resident model), "fast" (skip a missing expert, renormalise,
	// load it for later tokens), "os" (memory-map the files and let the
	// page cache decide) or "resident" (read every expert into memory).
	// Empty: resident when the model fits the memory budget, else exact.
	Policy string
	// Memory is the budget in bytes (0: from available RAM).
	Memory int64
	// Capacity is the number of expert slots per MoE layer (0: from the
	// budget).
	Capacity int
	// Profile is an expert profile file; empty: look for one named after
	// the model in ProfilesDir.
	Profile     string
	ProfilesDir string
	// Pin pins the profile's Pin most used experts of each layer.
	Pin int
	// DirectIO reads experts with O_DIRECT so the page cache holds no
	// second copy.
	DirectIO bool
	// Prefetch predicts the next layer's experts during decode and starts
	// loading them early, runs a layer's resident experts while its misses
	// load, and loads a prompt chunk's next group of experts while the
	// current one runs (CPU executor only).
	Prefetch bool
	// CacheDir holds the warm-start state (default ~/.cache/mlx-moe).
	CacheDir string
	// NoWarmStart skips restoring and saving the resident set.
	NoWarmStart bool
	// ReadAt replaces file reads of the pager (fault-injection tests).
	ReadAt experts.ReadAtFunc

	allocator experts.SlotAllocator // the executor's, when it has one
	buffers   graph.BufferAllocator // the executor's weight buffers, when it has them
}

// loadModel reads the checkpoint with experts held as opts says, decides
// the context (ctx) with what the budget leaves, and returns what has to be
// closed with the model. kvEstimate is the cache's size before the model is
// known (contextPlan.estimate).
func loadModel(dir string, opts ExpertOptions, ctx *contextPlan, kvEstimate int64, log io.Writer) (*model.Model, *experts.Pager, func() error, error) {
	policy := opts.Policy
	if policy == "" && opts.Capacity == 0 && opts.Memory == 0 {
		size, err := checkpointBytes(dir)
		if err != nil {
			return nil, nil, nil, err
		}
		budget, source, err := experts.AutoBudget()
		if err == nil && size+kvEstimate < budget {
			policy = "resident"
		} else {
			policy = "exact"
			fmt.Fprintf(log, "experts: the model (%s) does not fit the memory budget (%s, %s): paging experts from disk\n",
				experts.FormatBytes(size), experts.FormatBytes(budget), source)
		}
	}
	if policy == "" {
		policy = "exact"
	}
	if policy == "resident" {
		m, err := model.LoadWith(dir, model.LoadOptions{Buffers: opts.buffers})
		if err != nil {
			return nil, nil, nil, err
		}
		size, err := checkpointBytes(dir)
		if err == nil {
			err = ctx.decide(m, roomLeft(opts, size+scratchBytes(m, false)))
		}
		if err != nil {
			m.Close()
			return nil, nil, nil, err
		}
		return m, nil, nil, nil
	}
	pol, err := experts.ParsePolicy(policy)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := model.LoadWith(dir, model.LoadOptions{LazyExperts: true, Buffers: opts.buffers})
	if err != nil {
		return nil, nil, nil, err
	}
	m.MaxBatch = pagedMaxBatch(m, opts)
	if pol == experts.OS {
		// The mapped experts live in the page cache, outside the budget.
		if err := ctx.decide(m, roomLeft(opts, m.ResidentBytes()+scratchBytes(m, false))); err != nil {
			m.Close()
			return nil, nil, nil, err
		}
		closer, err := mapExperts(m)
		if err != nil {
			m.Close()
			return nil, nil, nil, err
		}
		return m, nil, closer, nil
	}
	p, err := startPager(m, pol, opts, ctx, log)
	if err != nil {
		m.Close()
		return nil, nil, nil, err
	}
	return m, p, nil, nil
}

// pagedMaxBatch is the forward-pass size of a paged model: each prefill
// chunk of a long prompt reads nearly every expert (from disk, or through
// page faults under the os policy), so 2,048-token chunks read the
// checkpoint once where 256-token chunks read it eight times. It is the
// largest of 2048, 1024 and 512 tokens whose working buffers take at most
// 1/32 of the memory budget, else the model's own.
func pagedMaxBatch(m *model.Model, opts ExpertOptions) int {
	budget := roomLeft(opts, 0)
	for _, n := range []int{2048, 1024, 512} {
		if n > m.MaxBatch && budget > 0 && scratchBytesFor(m, n, opts.DirectIO) <= budget/32 {
			return n
		}
	}
	return m.MaxBatch
}

// roomLeft is what the memory budget (--memory, else the automatic one)
// leaves after used bytes; -1 when no budget is known.
func roomLeft(opts ExpertOptions, used int64) int64 {
	budget := opts.Memory
	if budget <= 0 {
		var err error
		if budget, _, err = experts.AutoBudget(); err != nil {
			return -1
		}
	}
	return max(0, budget-used)
}

// checkpointBytes is the size of the safetensors files in dir.
func checkpointBytes(dir string) (int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			return 0, err
		}
		total += info.Size()
	}
	return total, nil
}

// mapExperts is the os policy: experts are views into read-only memory maps
// of the checkpoint files.
func mapExperts(m *model.Model) (func() error, error) {
	maps := map[string][]byte{}
	var unmaps []func() error
	closeAll := func() error {
		var first error
		for _, u := range unmaps {
			if err := u(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, src := range m.ExpertSources() {
		set := &mappedExperts{ResidentExperts: &model.ResidentExperts{}, parts: make([][][]byte, src.Count)}
		for e := 0; e < src.Count; e++ {
			ext := src.Extents(e)
			// Each part is a view at its own file offset: the "slot" is the
			// whole mapping of the file with offsets into it.
			data, err := mapped(maps, &unmaps, ext[0].File)
			if err != nil {
				closeAll()
				return nil, err
			}
			offsets := make([]int64, len(ext))
			for i, x := range ext {
				if x.File != ext[0].File {
					closeAll()
					return nil, fmt.Errorf("layer %d expert %d spans several files; the os policy needs each expert in one file", src.Layer, e)
				}
				offsets[i] = x.Offset
				set.parts[e] = append(set.parts[e], data[x.Offset:x.Offset+x.Length])
			}
			g, u, d := src.Views(data, offsets)
			set.Gate, set.Up, set.Down = append(set.Gate, g), append(set.Up, u), append(set.Down, d)
		}
		if err := m.AttachExperts(src.Layer, set); err != nil {
			closeAll()
			return nil, err
		}
	}
	return closeAll, nil
}

// mappedExperts are a layer's experts read through file mappings (the os
// policy). The executor calls Resolve with a pass's routed experts before
// it runs them; asking the kernel then to read exactly their bytes loads
// them together, where faults alone would read them page by page (the
// mappings get no read-around; see experts.MapFile).
type mappedExperts struct {
	*model.ResidentExperts
	parts [][][]byte // per expert, the mapped bytes of its parts
}

func (x *mappedExperts) Resolve(ids []int32) ([]bool, error) {
	present, err := x.ResidentExperts.Resolve(ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		for _, b := range x.parts[id] {
			// Advice only: if the kernel refuses it, the faults still read
			// the bytes.
			experts.AdviseWillNeed(b)
		}
	}
	return present, nil
}

// forward runs the model over ids. Under the os policy a fault in a
// mapped checkpoint file (truncated while mapped) fails the call with an
// error naming the file instead of killing the process.
func (m *Model) forward(c *model.Cache, ids []int32, all bool) (logits []float32, err error) {
	if m.closeMaps == nil {
		return m.runner.Forward(c, ids, all)
	}
	err = experts.GuardMapped(func() error {
		var ferr error
		logits, ferr = m.runner.Forward(c, ids, all)
		return ferr
	})
	return logits, err
}

func mapped(maps map[string][]byte, unmaps *[]func() error, file string) ([]byte, error) {
	if b, ok := maps[file]; ok {
		return b, nil
	}
	b, unmap, err := experts.MapFile(file)
	if err != nil {
		return nil, err
	}
	maps[file] = b
	*unmaps = append(*unmaps, unmap)
	return b, nil
}

// startPager sizes and starts the pager for the exact and fast policies,
// prints the plan, restores the warm set or fills from a profile, and
// attaches the pager to the model's MoE layers.
func startPager(m *model.Model, pol experts.Policy, opts ExpertOptions, ctx *contextPlan, log io.Writer) (*experts.Pager, error) {
	sources := m.ExpertSources()
	if len(sources) == 0 {
		return nil, fmt.Errorf("the model has no routed experts to page")
	}
	specs := m.PagerLayers()
	counts := make([]int, len(m.Layers))
	for _, src := range sources {
		counts[src.Layer] = src.Count
	}
	newLayout := experts.NewLayerLayout
	if opts.DirectIO {
		newLayout = experts.NewDirectLayout // the pager's: parts placed for in-place reads
	}
	layout, err := newLayout(sources[0].Layer, specs[sources[0].Layer])
	if err != nil {
		return nil, err
	}
	name := experts.ModelName(m.Index.Dir)
	profile, err := findProfile(opts, name, counts, log)
	if err != nil {
		return nil, err
	}
	// The context gets what the budget leaves next to the fewest slots a
	// token can run with (top-k per layer); the experts get the rest.
	scratch := scratchBytes(m, opts.DirectIO)
	minSlots := int64(len(sources)) * int64(m.Config.NumExpertsPerTok) * layout.SlotStride
	if err := ctx.decide(m, roomLeft(opts, m.ResidentBytes()+scratch+minSlots)); err != nil {
		return nil, err
	}
	plan, err := experts.NewPlan(experts.PlanInput{Memory: opts.Memory, Capacity: opts.Capacity,
		Resident: m.ResidentBytes(), KVCache: ctx.Bytes, MoELayers: len(sources), Experts: sources[0].Count,
		TopK: m.Config.NumExpertsPerTok, SlotBytes: layout.SlotStride, Pin: opts.Pin, Profile: profile,
		Scratch: scratch})
	if err != nil {
		return nil, err
	}
	fmt.Fprint(log, plan.String())
	p, err := experts.New(experts.Config{Layers: specs, Capacity: plan.Capacity, Policy: pol, DirectIO: opts.DirectIO, ReadAt: opts.ReadAt, Allocator: opts.allocator})
	if err != nil {
		return nil, err
	}
	if err := m.AttachPager(p); err != nil {
		p.Close()
		return nil, err
	}
	if err := warmOrFill(p, m, name, profile, opts, log); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func findProfile(opts ExpertOptions, name string, counts []int, log io.Writer) (*experts.Profile, error) {
	path := opts.Profile
	if path == "" && opts.ProfilesDir != "" {
		found, err := experts.FindProfile(opts.ProfilesDir, name)
		if err != nil || found == "" {
			return nil, nil
		}
		path = found
	}
	if path == "" {
		if opts.Pin > 0 {
			return nil, fmt.Errorf("--pin needs a profile (--profile FILE)")
		}
		return nil, nil
	}
	prof, err := experts.LoadProfile(path)
	if err != nil {
		return nil, err
	}
	if err := prof.Check(counts); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	fmt.Fprintf(log, "experts: using profile %s\n", path)
	return prof, nil
}

// warmOrFill restores the previous run's resident set, else fills the slots
// with the profile's most used experts; then pins.
func warmOrFill(p *experts.Pager, m *model.Model, name string, profile *experts.Profile, opts ExpertOptions, log io.Writer) error {
	if !opts.NoWarmStart {
		if path, err := experts.WarmPath(opts.CacheDir, name); err == nil {
			start, before := time.Now(), p.Stats().Total.Bytes
			loaded, ignored, err := p.LoadWarm(path)
			switch {
			case err != nil:
				return err
			case loaded > 0:
				took, read := time.Since(start), p.Stats().Total.Bytes-before
				fmt.Fprintf(log, "experts: warm start: %d experts restored from %s: %s in %.2f s (%.2f GB/s)\n",
					loaded, path, experts.FormatBytes(read), took.Seconds(), float64(read)/took.Seconds()/1e9)
			case ignored != "":
				fmt.Fprintf(log, "experts: warm start ignored: %s\n", ignored)
			}
		}
	}
	if profile == nil {
		return nil
	}
	for l := range m.Layers {
		if !p.HasLayer(l) {
			continue
		}
		order := profile.Order(l)
		if opts.Pin > 0 {
			if err := p.Pin(l, order[:min(opts.Pin, len(order))]); err != nil {
				return err
			}
		}
		if _, err := p.Fill(l, order); err != nil {
			return err
		}
	}
	return nil
}

// Profile runs prompts through the model with every expert available and
// counts, per MoE layer, how often the router chose each expert.
func (m *Model) Profile(prompts [][]int32, source string) (*experts.Profile, error) {
	counts := make([]int, len(m.Model.Layers))
	for l, layer := range m.Model.Layers {
		if moe, ok := layer.FFN.(*model.MoE); ok {
			counts[l] = moe.Experts.NumExperts()
		}
	}
	rec := experts.NewRecorder(counts)
	m.mu.Lock()
	defer m.mu.Unlock()
	var recErr error
	m.runner.Trace = &model.Trace{Routes: func(l int, r *graph.Routes) {
		if err := rec.Record(l, r.IDs[:r.Tokens*r.TopK]); err != nil && recErr == nil {
			recErr = err
		}
	}}
	defer func() { m.runner.Trace = nil }()
	for i, p := range prompts {
		if len(p) == 0 {
			continue
		}
		p = p[:min(len(p), m.ctxLen)]
		c := m.Model.NewCache(m.exec, len(p))
		_, err := m.forward(c, p, false)
		c.Free(m.exec)
		if err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i, err)
		}
		if recErr != nil {
			return nil, recErr
		}
	}
	return rec.Profile(m.Name, m.Model.Config.ModelType, m.Model.Config.NumExpertsPerTok, source), nil
}

// scratchBytes estimates the working buffers: a batch's activations (the
// hidden-size tensors and the expert intermediates), one row of logits and,
// with O_DIRECT, the IO workers' aligned bounce buffers.
func scratchBytes(m *model.Model, directIO bool) int64 {
	return scratchBytesFor(m, m.MaxBatch, directIO)
}

// scratchBytesFor is scratchBytes for passes of rows tokens.
func scratchBytesFor(m *model.Model, rows int, directIO bool) int64 {
	c := m.Config
	widest := 8*c.HiddenSize + 3*max(c.IntermediateSize, c.MoEIntermediateSize*c.NumExpertsPerTok)
	total := int64(4*rows*widest + 4*c.VocabSize)
	if directIO {
		total += experts.IOScratchBytes()
	}
	return total
}
