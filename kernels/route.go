package kernels

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
	// SparseMixer is PhiMoE's routing (see sparseMixer; TopK is 2, the
	// other fields are unused): JitterEps is its router_jitter_noise,
	// which at inference only sets how far below the maximum a score may
	// be and still share the softmax.
	SparseMixer bool
	JitterEps   float32
}

// RouteScratch holds Route's working buffers, kept by a caller that routes
// every token so that routing allocates nothing once they have grown.
type RouteScratch struct {
	buf    []float32
	groups []int32
}

// Route turns one token's router logits into TopK expert ids and weights.
// Ties are broken toward the lower expert id, as torch.topk does on CPU.
// s may be nil (Route then allocates its buffers).
func Route(logits []float32, r *Routing, ids []int32, weights []float32, s *RouteScratch) {
	if r.SparseMixer {
		sparseMixer(logits, r.JitterEps, ids, weights)
		return
	}
	if s == nil {
		s = new(RouteScratch)
	}
	n := len(logits)
	if cap(s.buf) < 2*n+r.Groups {
		s.buf = make([]float32, 2*n+r.Groups)
	}
	scores, choice, groupScore := s.buf[:n], s.buf[n:2*n], s.buf[2*n:2*n+r.Groups]
	copy(scores, logits)
	if r.Sigmoid {
		for i, v := range scores {
			scores[i] = Sigmoid(v)
		}
	} else {
		Softmax(scores)
	}
	copy(choice, scores)
	if r.CorrectionBias != nil {
		Add(choice, scores, r.CorrectionBias[:n])
	}
	if r.Groups > 1 {
		per := n / r.Groups
		for g := range groupScore {
			var top [2]int32
			k := min(2, per)
			topIndices(top[:k], choice[g*per:(g+1)*per])
			groupScore[g] = 0
			for _, i := range top[:k] {
				groupScore[g] += choice[g*per+int(i)]
			}
		}
		if cap(s.groups) < r.TopKGroups {
			s.groups = make([]int32, r.TopKGroups)
		}
		keep := topIndices(s.groups[:r.TopKGroups], groupScore)
		// Experts outside the kept groups score 0, as transformers masks them.
		for g := range r.Groups {
			if !containsIndex(keep, int32(g)) {
				clear(choice[g*per : (g+1)*per])
			}
		}
	}
	top := topIndices(ids[:r.TopK], choice)
	var sum float32
	for k, e := range top {
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

func containsIndex(xs []int32, x int32) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// normEpsilon matches the 1e-20 that sigmoid routers add to the sum.
func normEpsilon(r *Routing) float32 {
	if r.Sigmoid {
		return 1e-20
	}
	return 0
}

// topIndices fills dst with the indices of the len(dst) largest values of x,
// largest first, the lower index first among equal values (a stable sort's
// order), and returns it. It keeps the running top list sorted by insertion:
// O(len(x)·len(dst)) for the few experts a router picks, no allocation.
func topIndices(dst []int32, x []float32) []int32 {
	k := min(len(dst), len(x))
	dst = dst[:k]
	have := 0
	for i, v := range x {
		if have == k && !(v > x[dst[k-1]]) {
			continue
		}
		// Position: after every kept value >= v (they came first).
		p := have
		for p > 0 && v > x[dst[p-1]] {
			p--
		}
		if have < k {
			have++
		}
		copy(dst[p+1:have], dst[p:have-1])
		dst[p] = int32(i)
	}
	return dst
}
