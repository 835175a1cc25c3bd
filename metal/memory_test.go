package metal

import (
	"testing"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// checkMemoryUse fails unless the executor's figure is the size of the
// device's live buffers: every buffer counted, none twice.
func checkMemoryUse(t *testing.T, when string, e *Executor, d *harnessDevice) {
	t.Helper()
	if got := e.MemoryUse().Total(); got != d.liveBytes {
		t.Fatalf("%s: MemoryUse totals %d bytes, the device has %d bytes in live buffers", when, got, d.liveBytes)
	}
}

// TestMemoryUseWeightsOnce binds weights without running a kernel (no
// shaders compiled): one in an AllocBuffer buffer is bound in place and
// adds nothing; one in host memory gets one device copy, counted once
// however often it is bound.
func TestMemoryUseWeightsOnce(t *testing.T) {
	d := &harnessDevice{dispatches: map[string]int{}}
	e := newExecutor(d)
	b, err := e.AllocBuffer(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	checkMemoryUse(t, "after AllocBuffer", e, d)
	if got := e.MemoryUse().Weights; got != 1<<12 {
		t.Fatalf("a %d-byte weight buffer counts %d bytes of weights", 1<<12, got)
	}
	for range 3 {
		e.hostBytes(0, unsafe.Pointer(&b[256]), 1024, true)
	}
	if got := e.MemoryUse().Weights; got != 1<<12 {
		t.Fatalf("binding a weight inside its buffer made the weights %d bytes, want %d", got, 1<<12)
	}
	host := make([]float32, 100)
	for range 3 {
		e.floats(0, host)
	}
	checkMemoryUse(t, "after binding host weights", e, d)
	if got, want := e.MemoryUse().Weights, int64(1<<12+4*len(host)); got != want {
		t.Fatalf("a buffer and one host weight bound three times count %d bytes of weights, want %d", got, want)
	}
	if err := e.FreeBuffer(b); err != nil {
		t.Fatal(err)
	}
	checkMemoryUse(t, "after FreeBuffer", e, d)
}

// TestMemoryUseModel loads a fixture with the executor as its buffer
// allocator (as mlxmoe.Load does), runs decode steps through the shader
// harness and checks that the figure equals the device's live buffers at
// each stage, that the loaded weights count once (their buffers, and a copy
// only of host weights outside them), and that freeing the cache and the
// runner takes their tensors off it.
func TestMemoryUseModel(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	d := newHarnessDevice(t)
	e := newExecutor(d)
	m, err := model.LoadWith(fixture.Dir(t, "fixtures/qwen3_next-4bit"), model.LoadOptions{Buffers: e})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkMemoryUse(t, "after loading", e, d)
	loaded := e.MemoryUse()
	if loaded.Weights == 0 || loaded.Weights != d.liveBytes {
		t.Fatalf("after loading, %d bytes of weights counted, %d bytes of buffers live (all weights)", loaded.Weights, d.liveBytes)
	}
	rn := model.NewRunner(m, e)
	c := m.NewCache(e, 8)
	ids := []int32{1}
	for range 2 {
		if _, err := rn.Forward(c, ids, false); err != nil {
			t.Fatal(err)
		}
		ids[0]++
	}
	checkMemoryUse(t, "after two decode steps", e, d)
	u := e.MemoryUse()
	var copies int64
	for addr, w := range e.weights {
		if _, _, ok := e.regions.find(addr, len(w.host)); ok {
			t.Errorf("a weight at %#x in the executor's own buffers was copied too", addr)
		}
		copies += int64(cap(w.buf.data))
	}
	if u.Weights != loaded.Weights+copies {
		t.Fatalf("weights count %d bytes: want the %d bytes loaded into buffers plus %d bytes of host-weight copies", u.Weights, loaded.Weights, copies)
	}
	if u.Tensors == 0 || u.Scratch == 0 {
		t.Fatalf("after decode steps, tensors %d and scratch %d bytes: want both counted", u.Tensors, u.Scratch)
	}
	c.Free(e)
	rn.Free()
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	checkMemoryUse(t, "after freeing the cache and runner", e, d)
	if got := e.MemoryUse().Tensors; got != 0 {
		t.Fatalf("%d bytes of tensors counted after freeing the cache and the runner", got)
	}
	t.Logf("qwen3_next-4bit after 2 steps: weights %d B (%d in loader buffers, %d host copies), tensors %d B, scratch %d B",
		u.Weights, loaded.Weights, copies, u.Tensors, u.Scratch)
}
