package mlxmoe

import (
	"fmt"
	"io"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// fallbackContext is the context of a model whose config gives none
// (max_position_embeddings) when no memory budget is known either.
const fallbackContext = 32768

// contextPlan decides the context length and what its cache costs, once
// the model is loaded and the memory left for the cache is known.
type contextPlan struct {
	Asked    int              // Options.ContextLength; 0: the model's, bounded by the budget
	Format   kernels.KVFormat // the KV format caches get on this executor
	Parallel int              // sequences asked to run at once (Options.Parallel)

	Len   int   // the context decided on
	Seqs  int   // sequences that run at once: Parallel, as far as their caches fit
	Bytes int64 // their caches (KV and recurrent state)
	Fit   int   // positions that fit in the room given to decide; -1: no bound known
}

// estimate is the cache of the asked context (4096 positions when none
// was asked) before the model is loaded, counting every layer as
// attention: whether the whole model fits is decided with it.
func (c *contextPlan) estimate(cfg *model.Config) int64 {
	n := c.Asked
	if n <= 0 {
		n = 4096
	}
	cols := cfg.NumKVHeads * cfg.HeadDim
	f := c.Format
	group := kernels.KVGroup(cfg.HeadDim)
	if f.Quantized() && group == 0 {
		f = kernels.KVF16
	}
	return 2 * int64(cfg.NumLayers) * kernels.KVBytes(f, n, cols, group)
}

// decide sets the context: the asked length, else the model's trained
// length bounded by room, the bytes the cache may take (negative: no
// bound known). It fails when not even one position fits.
func (c *contextPlan) decide(m *model.Model, room int64) error {
	m.KVFormat = c.Format
	fixed := m.CacheBytes(0)
	perPos := m.CacheBytes(1) - fixed
	c.Fit = -1
	if room >= 0 && perPos > 0 {
		c.Fit = int(max(0, (room-fixed)/perPos))
	}
	c.Len = c.Asked
	if c.Len <= 0 {
		c.Len = m.Config.MaxPositions
		if c.Len <= 0 {
			c.Len = fallbackContext
		}
		if c.Fit >= 0 {
			c.Len = min(c.Len, c.Fit)
		}
		if c.Len < 2 {
			return fmt.Errorf("the memory budget leaves %s for the cache, not enough for a context (%s per position, %s of fixed state)",
				experts.FormatBytes(max(room, 0)), experts.FormatBytes(perPos), experts.FormatBytes(fixed))
		}
	}
	// Every running sequence has a cache of the whole context: as many
	// run at once as fit (at least one).
	one := m.CacheBytes(c.Len)
	c.Seqs = max(1, c.Parallel)
	if room >= 0 && one > 0 {
		c.Seqs = min(c.Seqs, int(max(1, room/one)))
	}
	c.Bytes = int64(c.Seqs) * one
	return nil
}

// print says what the cache costs and how much context fits.
func (c *contextPlan) print(m *model.Model, log io.Writer) {
	fit := "no memory bound known"
	if c.Fit >= 0 {
		fit = fmt.Sprintf("%d fit the budget", c.Fit)
	}
	fmt.Fprintf(log, "context: %d positions, KV cache %s: %s (%s per 1k positions; %s; the model's is %d)\n",
		c.Len, c.Format, experts.FormatBytes(m.CacheBytes(c.Len)), experts.FormatBytes(m.CacheBytes(1024)-m.CacheBytes(0)), fit, m.Config.MaxPositions)
	if c.Seqs != max(1, c.Parallel) {
		fmt.Fprintf(log, "parallel: %d sequences at once (%d asked; each needs a cache of the whole context: a shorter --context lets more run)\n", c.Seqs, c.Parallel)
	}
	if c.Fit >= 0 && c.Len > c.Fit {
		fmt.Fprintf(log, "warning: a context of %d positions needs more memory than the budget leaves (%d fit); a long sequence may run out of memory\n", c.Len, c.Fit)
	}
}
