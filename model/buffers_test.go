package model

import (
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// countingBuffers is a BufferAllocator over host memory that counts what
// it hands out and gets back.
type countingBuffers struct {
	hostBuffers
	allocs, frees int
}

func (c *countingBuffers) AllocBuffer(n int) ([]byte, error) {
	c.allocs++
	return c.hostBuffers.AllocBuffer(n)
}

func (c *countingBuffers) FreeBuffer(b []byte) error {
	c.frees++
	return c.hostBuffers.FreeBuffer(b)
}

// TestLoadIntoExecutorBuffers: with LoadOptions.Buffers the large weights
// (here: every tensor from 1 KiB, the fixture being small) are read into
// the given allocator's buffers, the model computes the same logits, and
// Close returns every buffer.
func TestLoadIntoExecutorBuffers(t *testing.T) {
	defer func(v int64) { offHeapMin = v }(offHeapMin)
	offHeapMin = 1 << 10
	dir := fixture.Dir(t, "fixtures/qwen3_next-4bit")
	want, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	bufs := &countingBuffers{}
	got, err := LoadWith(dir, LoadOptions{Buffers: bufs})
	if err != nil {
		t.Fatal(err)
	}
	if bufs.allocs == 0 {
		t.Fatal("no weight was read into the executor's buffers")
	}
	ids := []int32{1, 2, 3, 4}
	e := cpu.New()
	w, err := NewRunner(want, e).Forward(want.NewCache(e, 8), ids, false)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewRunner(got, e).Forward(got.NewCache(e, 8), ids, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g, w) {
		t.Fatal("logits differ with the weights in the executor's buffers")
	}
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if bufs.frees != bufs.allocs {
		t.Fatalf("Close freed %d of %d weight buffers", bufs.frees, bufs.allocs)
	}
}
