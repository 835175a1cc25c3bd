package mlxmoe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/metal"
	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
)

// trace runs a prompt as one prefill and then decodes greedily token by
// token, returning every logit it saw.
func trace(t *testing.T, m *Model, prompt []int32, steps int) []float32 {
	t.Helper()
	c := m.Model.NewCache(m.exec, len(prompt)+steps)
	all, err := m.runner.Forward(c, prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	vocab := m.Model.Config.VocabSize
	last := all[len(all)-vocab:]
	for i := 0; i < steps; i++ {
		next := sample.Argmax(last)
		if last, err = m.runner.Forward(c, []int32{next}, false); err != nil {
			t.Fatal(err)
		}
		all = append(all, last...)
	}
	return all
}

// residentTrace loads the model with every expert resident and traces a
// prompt of n ids spread over the vocabulary by mul.
func residentTrace(t *testing.T, dir string, n, mul, steps int) (*Model, []int32, []float32) {
	t.Helper()
	ref := loadWith(t, dir, ExpertOptions{Policy: "resident"})
	prompt := make([]int32, n)
	for i := range prompt {
		prompt[i] = int32((i*mul + 7) % ref.Model.Config.VocabSize)
	}
	return ref, prompt, trace(t, ref, prompt, steps)
}

func loadWith(t *testing.T, dir string, eo ExpertOptions) *Model {
	t.Helper()
	eo.NoWarmStart = true
	m, err := Load(dir, Options{Experts: eo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func pagedDirs(t *testing.T) map[string]string {
	dirs := map[string]string{}
	supported := map[string]bool{}
	for _, s := range model.SupportedTypes() {
		supported[s] = true
	}
	for _, name := range fixture.Names(t) {
		dir := fixture.Dir(t, "fixtures/"+name)
		if cfg, err := model.LoadConfig(dir); err == nil && supported[cfg.ModelType] {
			dirs[name] = dir
		}
	}
	dir, err := defaultmodel.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dirs["trained"] = dir
	return dirs
}

// TestExactPagingIsExact: at 25% and 50% of the experts resident, the exact
// policy gives logits bitwise identical to the fully resident model, for
// prefill (which routes to more experts than fit, so they are resolved in
// groups) and for decode.
func TestExactPagingIsExact(t *testing.T) {
	for name, dir := range pagedDirs(t) {
		t.Run(name, func(t *testing.T) {
			ref, prompt, want := residentTrace(t, dir, 40, 131, 12)
			n := ref.Model.Config.NumExperts
			for _, frac := range []int{25, 50, -25} {
				// -25: 25% with prefetching, which may only change what loads.
				prefetch := frac < 0
				capacity := max(n*abs(frac)/100, ref.Model.Config.NumExpertsPerTok)
				m := loadWith(t, dir, ExpertOptions{Policy: "exact", Capacity: capacity, Prefetch: prefetch})
				got := trace(t, m, prompt, 12)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("capacity %d/%d: logit %d is %v, resident gives %v", capacity, n, i, got[i], want[i])
					}
				}
				st, _ := m.ExpertStats()
				if st.Total.Misses == 0 || st.Total.Evictions == 0 {
					t.Fatalf("capacity %d/%d: expected misses and evictions, stats %+v", capacity, n, st.Total)
				}
			}
		})
	}
}

// TestPrefillLoadsNextGroup: a prompt that routes to more experts than the
// slots hold is resolved in groups; with prefetching on, each next group
// loads while the current one runs (decode is not involved: no token is
// generated), and the logits stay bitwise those of the resident model.
func TestPrefillLoadsNextGroup(t *testing.T) {
	dir := pagedDirs(t)["trained"]
	ref, prompt, want := residentTrace(t, dir, 64, 977, 0)
	n := ref.Model.Config.NumExperts
	for _, prefetch := range []bool{false, true} {
		m := loadWith(t, dir, ExpertOptions{Policy: "exact", Capacity: n / 4, Prefetch: prefetch})
		got := trace(t, m, prompt, 0)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("prefetch %v: logit %d is %v, resident gives %v", prefetch, i, got[i], want[i])
			}
		}
		st, _ := m.ExpertStats()
		if prefetch != (st.Total.Prefetched > 0) || prefetch != (st.Total.PrefetchHits > 0) {
			t.Errorf("prefetch %v: %d experts prefetched, %d of them routed", prefetch, st.Total.Prefetched, st.Total.PrefetchHits)
		}
		t.Logf("prefetch %v: %d misses, %d prefetched (%d routed), Resolve waited %v", prefetch, st.Total.Misses, st.Total.Prefetched, st.Total.PrefetchHits, st.Total.IOWait)
	}
}

// TestOSPolicyMatches: memory-mapped experts give the resident logits.
func TestOSPolicyMatches(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	ref := loadWith(t, dir, ExpertOptions{Policy: "resident"})
	m := loadWith(t, dir, ExpertOptions{Policy: "os"})
	prompt := []int32{1, 2, 3, 4, 5, 6, 7, 8}
	want, got := trace(t, ref, prompt, 4), trace(t, m, prompt, 4)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("logit %d: os policy %v, resident %v", i, got[i], want[i])
		}
	}
}

// TestReadFaultRecovers: a failing expert read fails that request with an
// error naming the file, and the next request works and is exact.
func TestReadFaultRecovers(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	var fail atomic.Bool
	readAt := func(f *os.File, p []byte, off int64) (int, error) {
		if fail.Load() {
			return 0, syscall.EIO
		}
		return f.ReadAt(p, off)
	}
	ref := loadWith(t, dir, ExpertOptions{Policy: "resident"})
	want, _ := ref.Logits([]int32{10, 20, 30, 40})
	// With prefetch the executor runs resident experts while misses load,
	// so the failure surfaces in the middle of the layer.
	for _, prefetch := range []bool{false, true} {
		m := loadWith(t, dir, ExpertOptions{Policy: "exact", Capacity: 4, ReadAt: readAt, Prefetch: prefetch})
		prompt := []int32{10, 20, 30, 40}
		fail.Store(true)
		_, err := m.Logits(prompt)
		if err == nil || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "model.safetensors") {
			t.Fatalf("prefetch %v: want an EIO error naming the file, got %v", prefetch, err)
		}
		fail.Store(false)
		got, err := m.Logits(prompt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f32bytes(got), f32bytes(want)) {
			t.Fatalf("prefetch %v: logits after a failed read differ from the resident model", prefetch)
		}
	}
}

func f32bytes(x []float32) []byte {
	var b bytes.Buffer
	for _, v := range x {
		fmt.Fprintf(&b, "%08x", math.Float32bits(v))
	}
	return b.Bytes()
}

func abs(x int) int { return max(x, -x) }

// TestPagerFeedsMetalEventForm: the pager's expert sets offer the Metal
// executor their slots and table (its one-command-buffer MoE form) under
// the exact policy only.
func TestPagerFeedsMetalEventForm(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	for _, policy := range []string{"exact", "fast"} {
		m := loadWith(t, dir, ExpertOptions{Policy: policy, Capacity: 4})
		set, ok := m.Model.Layers[0].FFN.(*model.MoE).Experts.(metal.SlotExperts)
		if !ok {
			t.Fatalf("%s: the pager's expert set does not implement metal.SlotExperts", policy)
		}
		pool, table, layout, usable := set.SlotPool()
		if usable != (policy == "exact") {
			t.Fatalf("%s: SlotPool ok = %v", policy, usable)
		}
		if int64(len(pool)) != 4*layout.SlotStride || len(table) != set.NumExperts() {
			t.Fatalf("%s: pool %d bytes for 4 slots of %d, table %d entries", policy, len(pool), layout.SlotStride, len(table))
		}
		if err := set.ResolveTable([]int32{3, 7}); err != nil {
			t.Fatal(err)
		}
		if policy == "exact" && (table[3] < 0 || table[7] < 0) {
			t.Fatalf("resolved experts not in the table: %v", table)
		}
	}
}

// TestProfileCountsEveryRoute: Profile counts top-k experts for every token
// of every prompt in every MoE layer (and frees each prompt's cache).
func TestProfileCountsEveryRoute(t *testing.T) {
	m := loadWith(t, fixture.Dir(t, "fixtures/qwen3_moe-4bit"), ExpertOptions{Policy: "resident"})
	prompts := [][]int32{{1, 2, 3}, {}, {4, 5, 6, 7, 8}}
	p, err := m.Profile(prompts, "test")
	if err != nil {
		t.Fatal(err)
	}
	if p.Tokens != 8 || len(p.Layers) == 0 {
		t.Fatalf("profile of %d tokens over %d layers, want 8 tokens over every MoE layer", p.Tokens, len(p.Layers))
	}
	for _, l := range p.Layers {
		var sum int64
		for _, c := range l.Counts {
			sum += c
		}
		if want := 8 * int64(p.TopK); sum != want {
			t.Errorf("layer %d: %d routes counted, want %d", l.Layer, sum, want)
		}
	}
}

// countingBuffers is a graph.BufferAllocator on the Go heap that counts the
// buffers it has handed out and not yet taken back.
type countingBuffers struct{ live, total int }

func (b *countingBuffers) AllocBuffer(n int) ([]byte, error) {
	b.live++
	b.total++
	return make([]byte, n), nil
}

func (b *countingBuffers) FreeBuffer([]byte) error {
	b.live--
	return nil
}

// TestResidentLoadUsesExecutorBuffers: loadModel hands the executor's
// buffers to the loader (on Metal they are bound in place, not copied), so
// the resident experts are read into them, and closing the model gives
// every buffer back. (The fixtures' dense tensors are below the off-heap
// threshold; the model package tests LoadOptions.Buffers for those.)
func TestResidentLoadUsesExecutorBuffers(t *testing.T) {
	bufs := &countingBuffers{}
	m, p, closeMaps, err := loadModel(fixture.Dir(t, "fixtures/qwen3_moe-4bit"), ExpertOptions{Policy: "resident", buffers: bufs}, &contextPlan{Asked: 256}, 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil || closeMaps != nil {
		t.Fatal("the resident policy started a pager or mapped files")
	}
	if bufs.total == 0 {
		t.Error("no weight was read into the executor's buffers")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if bufs.live != 0 {
		t.Errorf("%d of %d buffers still held after Close", bufs.live, bufs.total)
	}
}

// A paged model's forward pass grows with the budget so that a long
// prompt's chunks read the experts fewer times, without the working
// buffers taking more than 1/32 of the budget.
func TestPagedMaxBatchGrowsWithTheBudget(t *testing.T) {
	cfg := &model.Config{HiddenSize: 2048, IntermediateSize: 5120, MoEIntermediateSize: 512, NumExpertsPerTok: 10, VocabSize: 151936}
	for _, c := range []struct {
		memory int64
		want   int
	}{{10 << 30, 2048}, {5 << 30, 1024}, {3 << 30, 512}, {1 << 30, 256}} {
		m := &model.Model{Config: cfg, MaxBatch: 256}
		got := pagedMaxBatch(m, ExpertOptions{Memory: c.memory})
		if got != c.want {
			t.Errorf("budget %s: MaxBatch %d, want %d", experts.FormatBytes(c.memory), got, c.want)
		}
		if got > 256 && scratchBytesFor(m, got, false) > c.memory/32 {
			t.Errorf("budget %s: %d-token buffers take %d bytes, over 1/32 of the budget", experts.FormatBytes(c.memory), got, scratchBytesFor(m, got, false))
		}
	}
}
