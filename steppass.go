package mlxmoe

import (
	"time"

	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// segment is one sequence's share of a scheduler step (model.Segment).
type segment = model.Segment

// forwardBatch runs a step's segments: the decode tokens (one token a
// segment, at most kernels.DecodeTokens of them a pass) batched, a prefill
// chunk in a pass of its own (a one-token chunk that runs every layer
// joins the decode tokens). They are kept apart because a pass of more
// rows than the decode kernels take runs the dense products through the
// GEMM, whose sums (and, by default, activation rounding) differ from the
// decode kernels': this way every sequence gets bitwise the logits it
// would get alone. last is how long the last segment's pass took when it
// ran alone (the prefill chunk's own cost, for the pacer), else 0.
func forwardBatch(rn *model.Runner, segs []segment) (last time.Duration, err error) {
	for len(segs) > 0 {
		n := 0
		for n < len(segs) && n < kernels.DecodeTokens && len(segs[n].IDs) == 1 && !pauses(segs[n]) {
			n++
		}
		n = max(n, 1)
		start := time.Now()
		if err := rn.ForwardBatch(segs[:n]); err != nil {
			return 0, err
		}
		if n == 1 && n == len(segs) {
			last = time.Since(start)
		}
		segs = segs[n:]
	}
	return last, nil
}

// pauses reports whether sg stops or resumes between layers: it runs in a
// pass of its own.
func pauses(sg segment) bool { return sg.Until > 0 || sg.Cache.Paused() > 0 }
