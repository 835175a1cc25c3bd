package model_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestForwardBatchPaused runs a prompt chunk in one pass and spread over
// several passes that pause between layers (Segment.Until), with another
// sequence's decode steps in between: on every fixture the chunk's
// logits, and those of the decode steps after it, are bitwise the same.
func TestForwardBatchPaused(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		if m.RopeSwitch > 0 {
			t.Skip("LongRoPE models run every segment alone and cannot pause")
		}
		layers := len(m.Layers)
		vocab := m.Config.VocabSize
		prompt := make([]int32, 13)
		for i := range prompt {
			prompt[i] = int32((i*7 + 3) % vocab)
		}
		// splits are the Until values each chunk's passes stop at: every
		// layer, the first and last alone, and one pass.
		var every []int
		for l := 1; l < layers; l++ {
			every = append(every, l)
		}
		for _, splits := range [][]int{nil, every, {1}, {layers - 1}} {
			want := runPaused(t, m, prompt, nil)
			got := runPaused(t, m, prompt, splits)
			for i := range want {
				if !slices.Equal(want[i], got[i]) {
					t.Errorf("paused at %v: logits %d differ from the unpaused run", splits, i)
				}
			}
		}
	})
}

// runPaused prefills prompt in chunks of 3, 1, 4 and the rest, each
// paused at splits, then decodes 3 tokens; a
// second sequence decodes a token in a pass of its own between any two
// passes. It returns the logits of every chunk and decode step.
func runPaused(t *testing.T, m *model.Model, prompt []int32, splits []int) [][]float32 {
	t.Helper()
	e := cpu.New()
	rn := model.NewRunner(m, e)
	defer rn.Free()
	c, other := m.NewCache(e, 64), m.NewCache(e, 64)
	defer c.Free(e)
	defer other.Free(e)
	vocab := m.Config.VocabSize
	if _, err := rn.Forward(other, []int32{1, 2}, false); err != nil {
		t.Fatal(err)
	}
	interleave := func() {
		seg := model.Segment{Cache: other, IDs: []int32{int32(other.Len % vocab)}, Logits: make([]float32, vocab)}
		if err := rn.ForwardBatch([]model.Segment{seg}); err != nil {
			t.Fatal(err)
		}
	}
	var out [][]float32
	run := func(ids []int32) {
		logits := make([]float32, vocab)
		for _, until := range splits {
			if until <= c.Paused() {
				continue
			}
			if err := rn.ForwardBatch([]model.Segment{{Cache: c, IDs: ids, Until: until}}); err != nil {
				t.Fatal(err)
			}
			if c.Paused() != until {
				t.Fatalf("after a pass until layer %d the cache is paused at %d", until, c.Paused())
			}
			interleave()
		}
		len0 := c.Len
		if err := rn.ForwardBatch([]model.Segment{{Cache: c, IDs: ids, Logits: logits}}); err != nil {
			t.Fatal(err)
		}
		if c.Paused() != 0 || c.Len != len0+len(ids) {
			t.Fatalf("a finished chunk left the cache paused at %d with %d positions, want %d", c.Paused(), c.Len, len0+len(ids))
		}
		out = append(out, logits)
	}
	run(prompt[:3]) // paused at position 0: resumed without a reset
	run(prompt[3:4])
	run(prompt[4:8])
	run(prompt[8:])
	for i := range 3 {
		run([]int32{int32((i*5 + 1) % vocab)})
	}
	return out
}

// TestForwardBatchPauseErrors checks that a paused chunk can only be
// resumed, alone, with its own tokens, and that a dropped one lets the
// cache start over.
func TestForwardBatchPauseErrors(t *testing.T) {
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := cpu.New()
	rn := model.NewRunner(m, e)
	defer rn.Free()
	a, b := m.NewCache(e, 16), m.NewCache(e, 16)
	layers := len(m.Layers)
	if err := rn.ForwardBatch([]model.Segment{{Cache: a, IDs: []int32{1}, Until: 1}, {Cache: b, IDs: []int32{1}}}); err == nil ||
		!strings.Contains(err.Error(), "segment 0: a segment that pauses") {
		t.Errorf("pausing next to another segment: error %v", err)
	}
	if err := rn.ForwardBatch([]model.Segment{{Cache: a, IDs: []int32{1}, Until: layers + 1}}); err == nil ||
		!strings.Contains(err.Error(), "outside layers") {
		t.Errorf("Until past the last layer: error %v", err)
	}
	if err := rn.ForwardBatch([]model.Segment{{Cache: a, IDs: []int32{1, 2}, Until: 2}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		segs []model.Segment
		want string
	}{
		{"other tokens", []model.Segment{{Cache: a, IDs: []int32{1, 3}}}, "paused at layer 2"},
		{"backwards", []model.Segment{{Cache: a, IDs: []int32{1, 2}, Until: 1}}, "outside layers 3.."},
		{"with others", []model.Segment{{Cache: b, IDs: []int32{1}}, {Cache: a, IDs: []int32{1, 2}}}, "segment 1: a segment that pauses or resumes"},
	}
	for _, tc := range cases {
		if err := rn.ForwardBatch(tc.segs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := rn.Forward(a, []int32{5}, false); err == nil {
		t.Errorf("Forward of other tokens on a paused cache: no error")
	}
	// Dropped, the cache starts over and gets what a fresh one gets.
	a.DropPaused()
	a.Len = 0
	got, err := rn.Forward(a, []int32{4, 5}, false)
	if err != nil {
		t.Fatal(err)
	}
	got = slices.Clone(got)
	want, err := rn.Forward(m.NewCache(e, 16), []int32{4, 5}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("a cache restarted after DropPaused differs from a fresh one")
	}
}
