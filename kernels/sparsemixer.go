package kernels

import "math"

// sparseMixer is PhiMoE's routing: transformers' sparsemixer with training
// off (no Gumbel sampling, no Heun multiplier). It always picks two experts:
//
//  1. e1 = argmax s. Scores far below the maximum are masked out: s_j is
//     dropped when (max-s_j)/max(|s_j|, max) > 2*eps. w1 is e1's softmax
//     probability over the scores kept.
//  2. e2 = argmax of s with e1 removed, masked the same way around that
//     second maximum (the factor still reads the unmasked |s_j|); w2 is
//     e2's softmax probability over what is kept, e1 excluded.
//
// The weights are not renormalised. Ties go to the lower expert id, as
// torch.max does. The arithmetic is float32 as in torch, so the masks agree
// at the boundary. ids and weights get two entries each.
func sparseMixer(s []float32, eps float32, ids []int32, weights []float32) {
	thr := 2 * eps
	e1 := argmaxExcept(s, -1)
	ids[0], weights[0] = int32(e1), maskedSoftmaxAt(s, e1, -1, thr)
	e2 := argmaxExcept(s, e1)
	ids[1], weights[1] = int32(e2), maskedSoftmaxAt(s, e2, e1, thr)
}

// argmaxExcept is the index of the largest score, skipping index skip, the
// lowest index among equals.
func argmaxExcept(s []float32, skip int) int {
	best := -1
	for i, v := range s {
		if i != skip && (best < 0 || v > s[best]) {
			best = i
		}
	}
	return best
}

// maskedSoftmaxAt is the softmax probability of s[top] over the scores
// sparsemixer keeps around the maximum s[top] (skip excluded).
func maskedSoftmaxAt(s []float32, top, skip int, thr float32) float32 {
	m := s[top]
	var sum float32
	for j, v := range s {
		if j == skip || (m-v)/max(abs32(v), m) > thr {
			continue
		}
		sum += float32(math.Exp(float64(v - m)))
	}
	return 1 / sum
}
