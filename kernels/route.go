package kernels

import "sort"

// Routing says how router logits become expert choices and weights.
type Routing struct {
	TopK int
	// Sigmoid scores (DeepSeek-V3, GLM-4.x) instead of softmax.
	Sigmoid bool
	// CorrectionBias is added to the scores for choosing experts only
	// (e_score_correction_bias); weights use the uncorrected scores.
	CorrectionBias []float32
	// Groups and TopKGroups limit the choice to the best TopKGroups of
	// Groups expert groups, a group scored by the sum of its top two.
	Groups, TopKGroups int
	// Normalize rescales the chosen weights to sum to one.
	Normalize bool
	// Scale multiplies the final weights (routed_scaling_factor).
	Scale float32
}

// Route turns one token's router logits into TopK expert ids and weights.
// Ties are broken toward the lower expert id, as torch.topk does on CPU.
func Route(logits []float32, r *Routing, ids []int32, weights []float32) {
	n := len(logits)
	scores := make([]float32, n)
	copy(scores, logits)
	if r.Sigmoid {
		for i, v := range scores {
			scores[i] = Sigmoid(v)
		}
	} else {
		Softmax(scores)
	}
	choice := scores
	if r.CorrectionBias != nil {
		choice = make([]float32, n)
		for i := range choice {
			choice[i] = scores[i] + r.CorrectionBias[i]
		}
	}
	allowed := make([]bool, n)
	if r.Groups > 1 {
		per := n / r.Groups
		groupScore := make([]float32, r.Groups)
		for g := range groupScore {
			top := topIndices(choice[g*per:(g+1)*per], 2)
			for _, i := range top {
				groupScore[g] += choice[g*per+int(i)]
			}
		}
		for _, g := range topIndices(groupScore, r.TopKGroups) {
			for i := int(g) * per; i < (int(g)+1)*per; i++ {
				allowed[i] = true
			}
		}
	} else {
		for i := range allowed {
			allowed[i] = true
		}
	}
	masked := make([]float32, n)
	for i := range masked {
		masked[i] = choice[i]
		if !allowed[i] {
			masked[i] = 0 // as transformers masks excluded groups
		}
	}
	top := topIndices(masked, r.TopK)
	var sum float32
	for k, e := range top {
		ids[k] = e
		weights[k] = scores[e]
		sum += scores[e]
	}
	for k := range top {
		if r.Normalize {
			weights[k] /= sum + normEpsilon(r)
		}
		weights[k] *= r.Scale
	}
}

// normEpsilon matches the 1e-20 that sigmoid routers add to the sum.
func normEpsilon(r *Routing) float32 {
	if r.Sigmoid {
		return 1e-20
	}
	return 0
}

// topIndices returns the indices of the k largest values, largest first.
func topIndices(x []float32, k int) []int32 {
	idx := make([]int32, len(x))
	for i := range idx {
		idx[i] = int32(i)
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	return idx[:k]
}
