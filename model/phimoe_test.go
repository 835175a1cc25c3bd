package model_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestPhiMoEUnsupportedOptions: config options the phimoe loader does not
// implement fail with an error naming the field.
func TestPhiMoEUnsupportedOptions(t *testing.T) {
	rope := func(c map[string]any) map[string]any { return c["rope_scaling"].(map[string]any) }
	cases := []struct {
		name string
		edit func(c map[string]any)
		want string
	}{
		{"top-3", func(c map[string]any) { c["num_experts_per_tok"] = 3 }, "num_experts_per_tok is 3"},
		{"sliding window", func(c map[string]any) { c["sliding_window"] = 16 }, "sliding_window 16"},
		{"activation", func(c map[string]any) { c["hidden_act"] = "gelu" }, `hidden_act "gelu"`},
		{"negative jitter", func(c map[string]any) { c["router_jitter_noise"] = -1 }, "router_jitter_noise"},
		{"short factors", func(c map[string]any) { rope(c)["short_factor"] = []float64{1, 2} }, "rope_scaling.short_factor has 2 entries"},
		{"long factor", func(c map[string]any) { rope(c)["long_factor"].([]any)[3] = 0 }, "rope_scaling.long_factor[3] must be positive"},
		{"no original length", func(c map[string]any) {
			delete(rope(c), "original_max_position_embeddings")
			delete(c, "original_max_position_embeddings")
		}, "original_max_position_embeddings"},
		{"other scaling", func(c map[string]any) { rope(c)["type"], rope(c)["rope_type"] = "su", "su" }, `rope_scaling type "su" is not supported`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/phimoe-hf-bf16")
			fixture.EditConfig(t, dir, tc.edit)
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// loadPhiMoE loads a phimoe fixture, closed when the test ends.
func loadPhiMoE(t *testing.T, name string) (*model.Model, *fixture.Reference) {
	dir := fixture.Dir(t, "fixtures/"+name)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, fixture.LoadReference(t, dir)
}

// TestPhiMoELongRoPERecompute: the reference's positions up to
// original_max_position_embeddings (40) use the short rotary table and
// longer sequences the long one throughout. A cache cut back below 40
// after a long pass, a prompt in chunks that end on both sides of 40, and
// a pass asking for every position's logits across the switch all give
// the logits of a fresh pass over the whole sequence.
func TestPhiMoELongRoPERecompute(t *testing.T) {
	for _, name := range []string{"phimoe-4bit", "phimoe-hf-bf16"} {
		t.Run(name, func(t *testing.T) {
			m, ref := loadPhiMoE(t, name)
			if m.RopeSwitch != 40 {
				t.Fatalf("RopeSwitch %d, want the fixture's original_max_position_embeddings 40", m.RopeSwitch)
			}
			e := cpu.New()
			vocab := m.Config.VocabSize

			// Long, then cut back to a short prefix: prompt 1 again.
			p1 := ref.Prompts[1]
			long := append(slices.Clone(p1.IDs), ref.Greedy.NewIDs...)
			rn := model.NewRunner(m, e)
			c := m.NewCache(e, len(long))
			if _, err := rn.Forward(c, long, false); err != nil {
				t.Fatal(err)
			}
			c.Len = len(p1.IDs) - 1
			got, err := rn.Forward(c, p1.IDs[len(p1.IDs)-1:], false)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(got, p1.LastLogits); d > logitTol {
				t.Errorf("cut back below the switch: last logits differ by %g", d)
			}

			// A 300-token prompt in chunks of 16: long throughout.
			p2 := ref.Prompts[2]
			m.MaxBatch = 16
			rn = model.NewRunner(m, e)
			c = m.NewCache(e, len(p2.IDs))
			if got, err = rn.Forward(c, p2.IDs, false); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(got, p2.LastLogits); d > logitTol {
				t.Errorf("prompt in chunks of 16: last logits differ by %g", d)
			}
			m.MaxBatch = 256

			// Every position's logits across the switch: those of the
			// new positions only, as a fresh pass computes them.
			rn = model.NewRunner(m, e)
			c = m.NewCache(e, len(long))
			want, err := rn.Forward(c, long, true)
			if err != nil {
				t.Fatal(err)
			}
			c = m.NewCache(e, len(long))
			if _, err := rn.Forward(c, long[:30], false); err != nil {
				t.Fatal(err)
			}
			all, err := rn.Forward(c, long[30:], true)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != (len(long)-30)*vocab {
				t.Fatalf("%d logits for %d new positions", len(all), len(long)-30)
			}
			if d := maxAbsDiff(all, want[30*vocab:]); d > 1e-4 {
				t.Errorf("all logits across the switch differ from a fresh pass by %g", d)
			}
		})
	}
}
