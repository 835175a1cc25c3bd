package experts

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"12GB": 12e9, "12G": 12 << 30, "512MiB": 512 << 20, "1.5 GB": 1.5e9, "4096": 4096, "10gib": 10 << 30, "2TB": 2e12, "300k": 300 << 10,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "12XB", "-3GB", "1e99GB", "twelve"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func TestAutoBudget(t *testing.T) {
	b, why, err := AutoBudget()
	if err != nil {
		t.Skip(err)
	}
	avail, _, _ := availableMemory()
	if b <= 0 || b >= avail || !strings.Contains(why, "available") {
		t.Errorf("AutoBudget = %d (%s), available %d", b, why, avail)
	}
}

// Qwen3-Coder-Next shapes: 48 MoE layers of 512 experts, top-10, 1.69 MiB a slot.
var coderNext = PlanInput{MoELayers: 48, Experts: 512, TopK: 10, SlotBytes: 1769472,
	Resident: 1_400_000_000, KVCache: 200_000_000, Scratch: 100_000_000}

func TestPlan(t *testing.T) {
	in := coderNext
	in.Memory = 10e9
	p, err := NewPlan(in)
	if err != nil {
		t.Fatal(err)
	}
	want := int(int64(10e9-1.7e9) / (48 * 1769472))
	if p.Capacity != want || p.ExpertMemory != int64(want)*48*1769472 {
		t.Errorf("capacity %d (%d bytes), want %d", p.Capacity, p.ExpertMemory, want)
	}
	if p.Resident+p.KVCache+p.Scratch+p.ExpertMemory > p.Budget {
		t.Errorf("plan exceeds its budget:\n%s", p)
	}
	if s := p.String(); !strings.Contains(s, "97 slots") || !strings.Contains(s, "unknown") {
		t.Errorf("plan text:\n%s", s)
	}

	in.Memory = 2e9
	if _, err := NewPlan(in); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Errorf("budget below top-k: %v", err)
	}
	in.Memory, in.Capacity = 10e9, 600
	if p, err := NewPlan(in); err != nil || p.Capacity != 512 || p.Note == "" {
		t.Errorf("explicit capacity 600: %d, note %q, %v", p.Capacity, p.Note, err)
	}
	in.Capacity, in.Pin = 20, 11
	if _, err := NewPlan(in); err == nil {
		t.Error("pin leaving fewer than top-k slots accepted")
	}
	in.Pin = 10
	in.Profile = &Profile{Model: "m", Tokens: 5, Layers: []ProfileLayer{{Layer: 0, Counts: append([]int64{50, 30, 10}, make([]int64, 509)...)}}}
	in.Capacity, in.Pin = 10, 0
	if p, err := NewPlan(in); err != nil || math.Abs(p.ExpectedHitRate-1) > 1e-9 || !strings.Contains(p.String(), "100.0%") {
		t.Errorf("expected hit rate %v, %v", p.ExpectedHitRate, err)
	}
}

func TestProfile(t *testing.T) {
	dir := t.TempDir()
	r := NewRecorder([]int{0, 4, 4})
	for range 3 {
		if err := r.Record(1, []int32{2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Record(2, []int32{0, 0, 1, 3, 3, 3}); err != nil {
		t.Fatal(err)
	}
	if r.Record(0, []int32{1}) == nil || r.Record(1, []int32{4}) == nil {
		t.Error("recorder accepted a dense layer or an out-of-range id")
	}
	p := r.Profile("mlx-community/Tiny-MoE-4bit", "qwen3_next", 2, "prompts.txt")
	if p.Tokens != 3 || len(p.Layers) != 2 || p.Layers[0].Layer != 1 {
		t.Fatalf("profile %+v", p)
	}
	if got := p.Order(2); got[0] != 3 || got[1] != 0 || got[2] != 1 || got[3] != 2 {
		t.Errorf("order %v, want [3 0 1 2]", got)
	}
	if hr := p.HitRate(1); math.Abs(hr-(0.5+0.5)/2) > 1e-9 {
		t.Errorf("hit rate at capacity 1 = %v, want 0.5", hr)
	}
	path := filepath.Join(dir, "tiny.json")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	q, err := LoadProfile(path)
	if err != nil || q.Model != p.Model || q.Counts(2)[3] != 3 {
		t.Fatalf("reloaded %+v, %v", q, err)
	}
	if err := q.Check([]int{0, 4, 4}); err != nil {
		t.Error(err)
	}
	if err := q.Check([]int{0, 4, 8}); err == nil || !strings.Contains(err.Error(), "layer 2 has 4 counts") {
		t.Errorf("Check against another model: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "other.json"), []byte(`{"model": "x", "layers": []}`), 0o644)
	os.WriteFile(filepath.Join(dir, "junk.json"), []byte(`[1,2`), 0o644)
	for model, want := range map[string]string{"/models/tiny-moe-4bit/": path, "Tiny-MoE-4bit": path, "tiny": path, "nope": ""} {
		got, err := FindProfile(dir, model)
		if err != nil || got != want {
			t.Errorf("FindProfile(%q) = %q, %v; want %q", model, got, err, want)
		}
	}
	os.WriteFile(path, []byte(`{"model": "m", "layers": [{"layer": 1, "counts": [1, -2]}]}`), 0o644)
	if _, err := LoadProfile(path); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative count: %v", err)
	}
}

func TestWarmStart(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	path, err := WarmPath("", "/models/Tiny-4bit")
	if err != nil || path != filepath.Join(dir, "cache", "mlx-moe", "Tiny-4bit", "resident.json") {
		t.Fatalf("WarmPath = %q, %v", path, err)
	}
	m := writeTestModel(t, dir, 2, 8, testParts)
	p := newTestPager(t, m, 3, nil)
	slots := make([]int32, 2)
	for _, ids := range [][]int32{{1, 2}, {2, 5}, {2, 1}} {
		if err := p.Resolve(1, ids, slots); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SaveWarm(path, "Tiny-4bit"); err != nil {
		t.Fatal(err)
	}
	p.Close()

	q := newTestPager(t, m, 3, nil)
	n, why, err := q.LoadWarm(path)
	if err != nil || why != "" || n != 3 {
		t.Fatalf("LoadWarm = %d, %q, %v", n, why, err)
	}
	if got := q.Resident(1); len(got) != 3 || got[0] != 2 || got[1] != 1 {
		t.Errorf("warm resident %v, want 2 and 1 first", got)
	}
	if err := q.Resolve(1, []int32{1, 2, 5}, make([]int32, 3)); err != nil || q.Stats().Total.Misses != 0 {
		t.Errorf("after warm start: %v, %d misses", err, q.Stats().Total.Misses)
	}

	r := newTestPager(t, m, 4, nil)
	if n, why, err := r.LoadWarm(path); n != 0 || !strings.Contains(why, "capacity 3, now 4") || err != nil {
		t.Errorf("other capacity: %d, %q, %v", n, why, err)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(m.path, later, later)
	s := newTestPager(t, m, 3, nil)
	if n, why, err := s.LoadWarm(path); n != 0 || !strings.Contains(why, "changed since it was saved") || err != nil {
		t.Errorf("touched model: %d, %q, %v", n, why, err)
	}
	if _, why, _ := s.LoadWarm(filepath.Join(dir, "none.json")); !strings.Contains(why, "no warm-start file") {
		t.Errorf("missing file: %q", why)
	}
}
