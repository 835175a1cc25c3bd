package model

import (
	"fmt"
	"math"
)

// MeanNLL returns the mean over positions 1..n-1 of -log p(ids[i] | ids[:i]),
// computed from one prefill pass over a fresh cache.
func (rn *Runner) MeanNLL(ids []int32) (float64, error) {
	if len(ids) < 2 {
		return 0, fmt.Errorf("need at least 2 tokens to score, got %d", len(ids))
	}
	c := rn.M.NewCache(rn.E, len(ids))
	defer c.Free(rn.E)
	logits, err := rn.Forward(c, ids, true)
	if err != nil {
		return 0, err
	}
	vocab := rn.M.Config.VocabSize
	var sum float64
	for i := 1; i < len(ids); i++ {
		sum -= logProb(logits[(i-1)*vocab:i*vocab], ids[i])
	}
	return sum / float64(len(ids)-1), nil
}

// logProb is log softmax(logits)[id], in float64.
func logProb(logits []float32, id int32) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - m)
	}
	return float64(logits[id]) - m - math.Log(s)
}
