package mlxmoe

import "github.com/mlx-moe/mlx-moe/model"

// segment is one sequence's share of a batched forward pass: its new
// tokens are appended to Cache at Cache.Len, and when Logits is set it
// receives the logits of the last new position.
type segment struct {
	Cache  *model.Cache
	IDs    []int32
	Logits []float32
}

// forwardBatch runs one forward pass over segs (distinct caches, at most
// MaxBatch tokens in all). Until the model runs a batch in one pass it
// runs each segment in turn, which gives the same results; every batched
// pass of the scheduler goes through here.
func forwardBatch(rn *model.Runner, segs []segment) error {
	for _, s := range segs {
		logits, err := rn.Forward(s.Cache, s.IDs, false)
		if err != nil {
			return err
		}
		if s.Logits != nil {
			copy(s.Logits, logits)
		}
	}
	return nil
}
