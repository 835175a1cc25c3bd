package mlxmoe

import (
	"context"
	"fmt"
	"testing"
)

// TestHybridSnapshotsShareKV: four snapshots of a 2k-token Qwen3-Next
// conversation hold only the recurrent state, so the session's KV memory
// is less than 1.2× the live cache's (allocated bytes, not estimates);
// restoring one of them generates what a cold run generates; a prompt
// that moves the live cache elsewhere first gives the snapshot its own
// copy of the KV rows, so it still works afterwards.
func TestHybridSnapshotsShareKV(t *testing.T) {
	opts := Options{ContextLength: 2304}
	m := loadFixture(t, "qwen3_next-4bit", opts)
	conv := randomIDs(31, 2000)
	gen := GenerateOptions{MaxTokens: 1, IgnoreEOS: true, CachePoints: []int{500, 1000, 1500}}
	if _, err := m.Stream(context.Background(), conv, gen, nil); err != nil {
		t.Fatal(err)
	}
	s := m.session
	if len(s.snaps) != 4 {
		t.Fatalf("%d snapshots, want 4 (three cache points and the prompt's end)", len(s.snaps))
	}
	// KV bytes are what a cache holds beyond the recurrent state.
	rec := m.Model.RecurrentBytes()
	live := s.lanes[0].cache.Bytes()
	kv := live - rec
	var snaps, snapKV, full int64
	for _, sn := range s.snaps {
		snaps += sn.cache.Bytes()
		snapKV += sn.cache.Bytes() - rec
		full += m.Model.CacheBytes(len(sn.tokens))
	}
	t.Logf("live cache %d bytes (KV %d, recurrent %d); 4 snapshots %d bytes, KV %d: session KV %.3f× the live KV, all memory %.3f× the live cache; as full copies the snapshots would take %d bytes (%.3f×)",
		live, kv, rec, snaps, snapKV, float64(kv+snapKV)/float64(kv), float64(live+snaps)/float64(live), full, float64(live+full)/float64(live))
	if r := float64(kv+snapKV) / float64(kv); r >= 1.2 {
		t.Errorf("the session's KV memory is %.3f× the live cache's", r)
	}

	// A new turn from the 1000-token point: restored from its snapshot.
	gen = GenerateOptions{MaxTokens: 6, IgnoreEOS: true}
	branch := append(append([]int32{}, conv[:1000]...), randomIDs(32, 50)...)
	check := func(what string, wantCached int) {
		t.Helper()
		got, err := m.Stream(context.Background(), branch, gen, nil)
		if err != nil {
			t.Fatal(err)
		}
		cold, err := loadFixture(t, "qwen3_next-4bit", opts).Stream(context.Background(), branch, gen, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.CachedTokens != wantCached || fmt.Sprint(got.IDs) != fmt.Sprint(cold.IDs) {
			t.Fatalf("%s: reused %d tokens (want %d), generated %v; cold %v", what, got.CachedTokens, wantCached, got.IDs, cold.IDs)
		}
	}
	check("branch at the cache point", 1000)
	// An unrelated prompt overwrites the live KV rows; the 1000-token
	// snapshot took a copy of them first.
	if _, err := m.Stream(context.Background(), randomIDs(33, 1200), gen, nil); err != nil {
		t.Fatal(err)
	}
	check("branch after an unrelated prompt", 1000)
}
