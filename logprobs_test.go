package mlxmoe

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// logprobs against the plain definition: log(exp(x_i) / sum exp(x)), and
// the top n by a full sort (ties broken by the lower id).
func TestLogprobs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 5000)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 4)
	}
	logits[17], logits[4000] = 30, 30 // a tie at the top
	of, top := logprobs(logits, 5)
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v))
	}
	for _, id := range []int32{0, 17, 4000, 4999} {
		want := float64(logits[id]) - math.Log(sum)
		if got := float64(of(id)); math.Abs(got-want) > 1e-4 {
			t.Errorf("logprob of %d: %g, want %g", id, got, want)
		}
	}
	ids := make([]int, len(logits))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] })
	if len(top) != 5 {
		t.Fatalf("%d alternatives, want 5", len(top))
	}
	for i, a := range top {
		if int(a.ID) != ids[i] || a.Logprob != of(a.ID) {
			t.Errorf("top[%d] = %+v, want id %d with logprob %g", i, a, ids[i], of(int32(ids[i])))
		}
	}
	if _, none := logprobs(logits, 0); none != nil {
		t.Errorf("n = 0 gave %v", none)
	}
}
