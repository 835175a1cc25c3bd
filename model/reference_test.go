package model_test

import (
	"fmt"
	"github.com/mlx-moe/mlx-moe/sample"
	"math"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

const logitTol = 1e-3

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func maxRelDiff(a, b []float32) float64 {
	var scale float64
	for _, v := range b {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	return maxAbsDiff(a, b) / math.Max(scale, 1e-6)
}

var layerNum = regexp.MustCompile(`layers\.(\d+)\.`)

// checkFixture compares a model against everything its reference.json holds.
func checkFixture(t *testing.T, rel string) {
	dir := fixture.Dir(t, rel)
	ref := fixture.LoadReference(t, dir)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := cpu.New()
	for pi, p := range ref.Prompts {
		rn := model.NewRunner(m, e)
		layerOut := map[int][]float32{}
		routes := map[int][][]int32{}
		hidden := m.Config.HiddenSize
		rn.Trace = &model.Trace{
			LayerOutput: func(l int, rows []float32) { layerOut[l] = slices.Clone(rows[len(rows)-hidden:]) },
			Routes: func(l int, r *graph.Routes) {
				for tok := 0; tok < r.Tokens; tok++ {
					ids := slices.Clone(r.IDs[tok*r.TopK : (tok+1)*r.TopK])
					slices.Sort(ids)
					routes[l] = append(routes[l], ids)
				}
			},
		}
		c := m.NewCache(e, len(p.IDs))
		logits, err := rn.Forward(c, p.IDs, true)
		if err != nil {
			t.Fatal(err)
		}
		vocab := m.Config.VocabSize
		n := len(p.IDs)
		if d := maxAbsDiff(logits[(n-1)*vocab:], p.LastLogits); d > logitTol {
			t.Errorf("prompt %d: last logits differ by %g", pi, d)
		}
		if p.AllLogits != nil {
			var worst float64
			for i, row := range p.AllLogits {
				worst = math.Max(worst, maxAbsDiff(logits[i*vocab:(i+1)*vocab], row))
			}
			if worst > logitTol {
				t.Errorf("prompt %d: prefill logits differ by up to %g", pi, worst)
			}
			t.Logf("prompt %d: all logits max |Δ| %.2g", pi, worst)
		}
		for l, want := range p.LayerOutputLast {
			if d := maxRelDiff(layerOut[l], want); d > logitTol {
				t.Errorf("prompt %d layer %d: output differs (relative %g)", pi, l, d)
			}
		}
		for key, want := range p.RouterTopK {
			l, _ := strconv.Atoi(layerNum.FindStringSubmatch(key)[1])
			for tok := range want {
				w := slices.Clone(want[tok])
				slices.Sort(w)
				if !slices.Equal(routes[l][tok], w) {
					t.Errorf("prompt %d layer %d token %d: experts %v, want %v", pi, l, tok, routes[l][tok], w)
					break
				}
			}
		}
		// Decode path: the same prompt one token at a time.
		rn.Trace = nil
		dc := m.NewCache(e, len(p.IDs))
		var last []float32
		for _, id := range p.IDs {
			if last, err = rn.Forward(dc, []int32{id}, false); err != nil {
				t.Fatal(err)
			}
		}
		if d := maxAbsDiff(last, p.LastLogits); d > logitTol {
			t.Errorf("prompt %d: token-by-token decode last logits differ by %g", pi, d)
		}
	}
	checkGreedy(t, m, ref)
}

func checkGreedy(t *testing.T, m *model.Model, ref *fixture.Reference) {
	g := ref.Greedy
	if len(g.NewIDs) == 0 {
		return
	}
	rn := model.NewRunner(m, cpu.New())
	c := m.NewCache(rn.E, len(g.PromptIDs)+len(g.NewIDs)+1)
	logits, err := rn.Forward(c, g.PromptIDs, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range g.NewIDs {
		got := sample.Argmax(logits)
		if got != want {
			if g.Gaps[i] >= 1e-3 {
				t.Fatalf("greedy token %d: got %d, want %d (gap %g)", i, got, want, g.Gaps[i])
			}
			t.Logf("greedy token %d: got %d, want %d within the tie gap %g; stopping", i, got, want, g.Gaps[i])
			return
		}
		if logits, err = rn.Forward(c, []int32{want}, false); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFixtures(t *testing.T) {
	supported := map[string]bool{}
	for _, s := range model.SupportedTypes() {
		supported[s] = true
	}
	for _, name := range fixture.Names(t) {
		t.Run(name, func(t *testing.T) {
			cfg, err := model.LoadConfig(fixture.Dir(t, "fixtures/"+name))
			if err != nil {
				t.Fatal(err)
			}
			if !supported[cfg.ModelType] {
				t.Skip(fmt.Sprintf("model_type %s not implemented", cfg.ModelType))
			}
			checkFixture(t, "fixtures/"+name)
		})
	}
}
