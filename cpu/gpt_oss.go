package cpu

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var (
	_ graph.SinkAttention   = (*Executor)(nil)
	_ graph.SinkAttentionKV = (*Executor)(nil)
	_ graph.ClampedMoE      = (*Executor)(nil)
)

func (ex *Executor) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.AttentionSinks(o, ex.dense(0, q, n, 0, q.Cols), kCache.Data, vCache.Data, n, pos0, heads, kvHeads, dk, dv,
		kCache.RowStride(), vCache.RowStride(), scale, sinks, window)
	store(out, n, 0, out.Cols, o)
}

func (ex *Executor) AttentionSinksKV(out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.AttentionSinksKV(o, ex.dense(0, q, n, 0, q.Cols), &k.KVRows, kc0, &v.KVRows, vc0, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
	store(out, n, 0, out.Cols, o)
}

// MoEClamped runs gpt-oss's experts one after another (each over all of
// its tokens, its products split across the worker pool), adding their
// weighted outputs in the order the batch first routes to them, so exact
// paging, which resolves in groups but keeps that order, is bitwise equal
// to resident experts.
func (ex *Executor) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) error {
	s := &ex.moe
	for _, e := range r.IDs[:n*r.TopK] {
		if e >= 0 && int(e) >= len(b.DownBias) {
			return fmt.Errorf("route to expert %d: biases for %d experts", e, len(b.DownBias))
		}
	}
	limit, err := s.begin(out, n, r, experts)
	if err != nil {
		return err
	}
	for lo := 0; lo < len(s.distinct); lo += limit {
		group, present, err := s.resolve(experts, lo, limit, r.TopK)
		if err != nil {
			return err
		}
		for j, e := range group {
			if !present[j] {
				if len(group) < len(s.distinct) {
					return fmt.Errorf("expert %d was not resolved", e)
				}
				continue
			}
			if err := ex.runClampedExpert(out, x, s.routes(lo+j), r.TopK, e, experts, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// runClampedExpert adds expert e's weighted output for the routes (token =
// route / topK).
func (ex *Executor) runClampedExpert(out, x *graph.Tensor, routes []int, topK int, e int32, experts graph.ExpertSet, b *graph.BiasedExperts) error {
	gate, up, down := experts.Expert(e)
	if gate == nil || down == nil || (up == nil) != b.Interleaved {
		return fmt.Errorf("expert %d was resolved but lacks its matrices", e)
	}
	hidden, gateOut, inter, outCols := b.ExpertDims(gate, down)
	wantGate := inter // the gate's output width; an up matrix must match it
	if b.Interleaved {
		wantGate = 2 * inter
	} else if h, o, _, _ := b.ExpertDims(up, down); h != hidden || o != inter {
		wantGate = -1
	}
	if hidden != x.Cols || outCols != out.Cols || gateOut != wantGate {
		return fmt.Errorf("expert %d matrices gate [%d,%d], down [%d,%d] do not fit hidden size %d", e, gate.Rows, gate.Cols, down.Rows, down.Cols, x.Cols)
	}
	m := len(routes)
	mul := kernels.MatMul
	if b.Transposed {
		mul = kernels.MatMulTransposed
	}
	xs := ex.scratch(0, m*hidden)
	for j, route := range routes {
		copy(xs[j*hidden:(j+1)*hidden], x.Data[(route/topK)*hidden:])
	}
	act := ex.scratch(1, m*inter)
	if b.Interleaved {
		gu := ex.scratch(2, m*2*inter)
		mul(gu, xs, m, gate)
		for j := 0; j < m; j++ {
			row := gu[j*2*inter : (j+1)*2*inter]
			kernels.Add(row, row, b.GateBias[e])
			kernels.ClampedSwiGLUInterleaved(act[j*inter:(j+1)*inter], row, b.Alpha, b.Limit)
		}
	} else {
		u := ex.scratch(2, m*inter)
		mul(act, xs, m, gate)
		mul(u, xs, m, up)
		for j := 0; j < m; j++ {
			g, uj := act[j*inter:(j+1)*inter], u[j*inter:(j+1)*inter]
			kernels.Add(g, g, b.GateBias[e])
			kernels.Add(uj, uj, b.UpBias[e])
			kernels.ClampedSwiGLU(g, g, uj, b.Alpha, b.Limit)
		}
	}
	y := ex.scratch(3, m*out.Cols)
	mul(y, act, m, down)
	for j, route := range routes {
		yj := y[j*out.Cols : (j+1)*out.Cols]
		kernels.Add(yj, yj, b.DownBias[e])
		t := route / topK
		kernels.AddScaled(out.Data[t*out.Cols:(t+1)*out.Cols], yj, ex.moe.weights[route])
	}
	return nil
}
