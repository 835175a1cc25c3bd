package sample

import (
	"math"
	"testing"
)

func TestGreedyIsArgmax(t *testing.T) {
	s := New(Options{}, nil)
	if got := s.Next([]float32{0.1, 3, 2, 3}); got != 1 {
		t.Fatalf("greedy picked %d, want 1 (first maximum)", got)
	}
}

func TestSeedRepeats(t *testing.T) {
	logits := func() []float32 { return []float32{1, 1.2, 0.9, 1.1, 0.5} }
	draw := func(seed uint64) []int32 {
		s := New(Options{Temperature: 1, Seed: seed}, nil)
		var out []int32
		for i := 0; i < 50; i++ {
			out = append(out, s.Next(logits()))
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	same := func(x, y []int32) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("same seed gave different tokens")
	}
	if same(a, c) {
		t.Fatal("different seeds gave identical 50-token runs")
	}
}

// TestDistribution checks temperature sampling against softmax frequencies.
func TestDistribution(t *testing.T) {
	logits := []float32{0, 1, 2}
	s := New(Options{Temperature: 1, Seed: 1}, nil)
	counts := make([]float64, 3)
	const n = 30000
	for i := 0; i < n; i++ {
		counts[s.pick(append([]float32(nil), logits...))]++
	}
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v))
	}
	for i, v := range logits {
		want := math.Exp(float64(v)) / z
		if got := counts[i] / n; math.Abs(got-want) > 0.015 {
			t.Errorf("token %d drawn with frequency %.3f, want %.3f", i, got, want)
		}
	}
}

func TestFilters(t *testing.T) {
	logits := []float32{5, 4, 0, -1}
	for _, tc := range []struct {
		name    string
		opts    Options
		allowed map[int32]bool
	}{
		{"top-k 2", Options{Temperature: 1, TopK: 2}, map[int32]bool{0: true, 1: true}},
		{"top-p 0.5", Options{Temperature: 1, TopP: 0.5}, map[int32]bool{0: true}},
		{"min-p 0.2", Options{Temperature: 1, MinP: 0.2}, map[int32]bool{0: true, 1: true}},
	} {
		s := New(tc.opts, nil)
		for i := 0; i < 2000; i++ {
			if id := s.pick(append([]float32(nil), logits...)); !tc.allowed[id] {
				t.Fatalf("%s: drew token %d", tc.name, id)
			}
		}
	}
}

func TestPenalties(t *testing.T) {
	s := New(Options{RepetitionPenalty: 2}, []int32{0})
	l := []float32{4, 3, -1}
	s.penalize(l)
	if l[0] != 2 || l[1] != 3 {
		t.Fatalf("repetition penalty gave %v, want [2 3 -1]", l)
	}
	s = New(Options{PresencePenalty: 0.5, FrequencyPenalty: 1}, []int32{2, 2})
	l = []float32{0, 0, 1}
	s.penalize(l)
	if l[2] != -1.5 {
		t.Fatalf("presence+frequency penalty gave %v for a twice-seen token, want -1.5", l[2])
	}
}
