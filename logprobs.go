package mlxmoe

import (
	"math"
	"sort"
)

// Alternative is a token and its log-probability at one step.
type Alternative struct {
	ID      int32
	Logprob float32
}

// logprobs returns the log-probability of every token of logits under the
// model's own distribution (softmax of the raw logits, before penalties,
// temperature and masks) as a function, and the n most likely tokens.
func logprobs(logits []float32, n int) (of func(id int32) float32, top []Alternative) {
	maxv := float32(math.Inf(-1))
	for _, v := range logits {
		maxv = max(maxv, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - maxv))
	}
	lse := maxv + float32(math.Log(sum))
	raw := append([]float32(nil), logits...)
	of = func(id int32) float32 { return raw[id] - lse }
	if n <= 0 {
		return of, nil
	}
	// A bounded insertion list: n is small (at most 20).
	for id, v := range raw {
		if len(top) == n && v <= top[n-1].Logprob {
			continue
		}
		i := sort.Search(len(top), func(i int) bool { return top[i].Logprob < v })
		if len(top) < n {
			top = append(top, Alternative{})
		}
		copy(top[i+1:], top[i:])
		top[i] = Alternative{ID: int32(id), Logprob: v}
	}
	for i := range top {
		top[i].Logprob -= lse
	}
	return of, top
}
