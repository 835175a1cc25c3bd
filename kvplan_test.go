package mlxmoe

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestContextPlan: without --context the context is the model's, cut to
// what the room left for the cache holds at the chosen format; an asked
// context is kept; a room too small for any context is an error that
// says so.
func TestContextPlan(t *testing.T) {
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_moe-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	trained := m.Config.MaxPositions
	for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		c := &contextPlan{Format: f}
		if err := c.decide(m, -1); err != nil || c.Len != trained || c.Bytes != m.CacheBytes(trained) {
			t.Errorf("%v, no budget: context %d (%d bytes), err %v; want the model's %d", f, c.Len, c.Bytes, err, trained)
		}
		room := m.CacheBytes(100)
		if err := c.decide(m, room); err != nil || c.Len != 100 || c.Fit != 100 || c.Bytes > room {
			t.Errorf("%v, room for 100 positions: context %d (fit %d, %d bytes), err %v", f, c.Len, c.Fit, c.Bytes, err)
		}
		c.Asked = 500
		if err := c.decide(m, room); err != nil || c.Len != 500 {
			t.Errorf("%v, asked 500: context %d, err %v", f, c.Len, err)
		}
		c.Asked = 0
		if err := c.decide(m, 10); err == nil || !strings.Contains(err.Error(), "not enough for a context") {
			t.Errorf("%v, 10 bytes of room: %v", f, err)
		}
	}
	// Smaller formats fit more positions in the same room.
	room := m.CacheBytes(64)
	var fits []int
	for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		c := &contextPlan{Format: f}
		if err := c.decide(m, room); err != nil {
			t.Fatal(err)
		}
		fits = append(fits, c.Fit)
	}
	if !(fits[0] < fits[1] && fits[1] < fits[2] && fits[2] < fits[3]) {
		t.Errorf("positions fitting one room at f32, f16, 8, 4 bits: %v", fits)
	}
}

// TestContextPlanParallel: as many sequences run at once as their caches
// (each of the whole context) fit the room, at least one, at most asked;
// the plan's bytes are all their caches.
func TestContextPlanParallel(t *testing.T) {
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	one := func(c *contextPlan) int64 { return m.CacheBytes(c.Len) }
	for _, tc := range []struct {
		room func(one int64) int64
		want int
	}{
		{func(int64) int64 { return -1 }, 4},           // no bound known
		{func(one int64) int64 { return 10 * one }, 4}, // room for more than asked
		{func(one int64) int64 { return 5 * one / 2 }, 2},
		{func(one int64) int64 { return one / 2 }, 1}, // not even one: the context was asked
	} {
		c := &contextPlan{Format: kernels.KVF16, Asked: 300, Parallel: 4}
		room := tc.room(m.CacheBytes(300))
		if err := c.decide(m, room); err != nil {
			t.Fatal(err)
		}
		if c.Seqs != tc.want || c.Bytes != int64(c.Seqs)*one(c) {
			t.Errorf("room %d (a cache is %d): %d sequences, %d bytes; want %d", room, one(c), c.Seqs, c.Bytes, tc.want)
		}
	}
}
