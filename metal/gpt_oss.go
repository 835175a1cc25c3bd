package metal

import (
	"math"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// gpt-oss's ops: attention with sinks (sdpa_sinks_f32) and MXFP4 matrix
// products (qmv_mxfp4) have shaders (kernels/msl/gpt_oss.metal); the
// biased, clamped experts have none yet and run on the host (counted by
// HostOps, so the harness's fixture tests name them), after everything
// encoded before them.

var (
	_ graph.SinkAttention = (*Executor)(nil)
	_ graph.ClampedMoE    = (*Executor)(nil)
)

func (e *Executor) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	if dk > sdpaMaxDim || dv > sdpaMaxDim || kvHeads <= 0 || heads%kvHeads != 0 || !contiguous(n, out, q) || !e.dev.hasKernel("sdpa_sinks_f32") {
		e.onHost("AttentionSinks", func() {
			e.host.AttentionSinks(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
		})
		return
	}
	// SinkParams of kernels/msl/gpt_oss.metal: every field 32 bits.
	p := []uint32{uint32(pos0), uint32(heads), uint32(kvHeads), uint32(dk), uint32(dv),
		uint32(kCache.RowStride()), uint32(vCache.RowStride()), math.Float32bits(scale), uint32(window)}
	e.run("sdpa_sinks_f32", [3]int{heads, n, 1}, [3]int{sdpaThreads, 1, 1},
		e.tensor(0, q, 0), e.tensor(1, kCache, 0), e.tensor(2, vCache, 0), e.floats(3, sinks),
		e.tensor(4, out, 0), e.upload(5, p))
}

// mxMatMul runs MatMul for an MXFP4 matrix on qmv_mxfp4 and reports
// whether it did (other microscaling modes run on the host).
func (e *Executor) mxMatMul(out, x *graph.Tensor, n int, w *kernels.Matrix, bias []float32) bool {
	q := w.MX
	if q.Mode != kernels.MXFP4 || !e.dev.hasKernel("qmv_mxfp4") {
		return false
	}
	if !contiguous(n, out, x) {
		for t := 0; t < n; t++ {
			e.MatMul(rowView(out, t), rowView(x, t), 1, w, bias)
		}
		return true
	}
	e.run("qmv_mxfp4", [3]int{ceilDiv(w.Rows, 8), n, 1}, [3]int{256, 1, 1},
		e.hostBytes(0, unsafe.Pointer(unsafe.SliceData(q.W)), len(q.W), true),
		e.hostBytes(1, unsafe.Pointer(unsafe.SliceData(q.Scales)), len(q.Scales), true),
		e.tensor(2, x, 0), e.tensor(3, out, 0), e.upload(4, []uint32{uint32(w.Rows), uint32(w.Cols)}) /* MxParams */)
	if bias != nil {
		count := n * w.Rows
		e.run("add_row", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
			e.tensor(0, out, 0), e.floats(1, bias), e.tensor(2, out, 0), e.upload(3, uint32(count)), e.upload(4, uint32(w.Rows)))
	}
	return true
}

func (e *Executor) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) (err error) {
	e.onHost("MoEClamped", func() { err = e.host.MoEClamped(out, x, n, r, experts, b) })
	if err == nil {
		err = e.err
	}
	return err
}
