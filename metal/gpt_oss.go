package metal

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// gpt-oss's ops on the shaders: attention with sinks over float32, half
// and 8/4-bit caches (sdpa_sinks_f32/f16/q8/q4, kernels/msl/attention.metal),
// MXFP4 matrix products (qmv_mxfp4) and the biased experts' clamped SwiGLU
// (clamped_swiglu, kernels/msl/gpt_oss.metal). What they do not cover
// (views, other microscaling modes) runs on the host, counted by HostOps.

var (
	_ graph.SinkAttention   = (*Executor)(nil)
	_ graph.SinkAttentionKV = (*Executor)(nil)
	_ graph.ClampedMoE      = (*Executor)(nil)
)

func (e *Executor) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	if !sdpaCovers(n, out, q, heads, kvHeads, dk, dv) || !e.dev.hasKernel("sdpa_sinks_f32") {
		e.onHost("AttentionSinks", func() {
			e.host.AttentionSinks(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
		})
		return
	}
	p := sdpaParams{uint32(pos0), uint32(heads), uint32(kvHeads), uint32(dk), uint32(dv),
		uint32(kCache.RowStride()), uint32(vCache.RowStride()), scale, 0}
	e.runSinks("sdpa_sinks_f32", n, p, sinks, window, e.tensor(0, q, 0), e.tensor(1, kCache, 0), e.tensor(2, vCache, 0), e.tensor(4, out, 0))
}

// AttentionSinksKV runs sdpa_sinks_f16 or sdpa_sinks_q8/q4 with each cache
// bound at its first column, as AttentionKV binds them.
func (e *Executor) AttentionSinksKV(out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	kernel := "sdpa_sinks_" + k.Format.String()
	if !kvCovered(n, out, q, k, kc0, v, vc0, heads, kvHeads, dk, dv) || !e.dev.hasKernel(kernel) {
		e.onHost("AttentionSinksKV", func() {
			e.host.AttentionSinksKV(out, q, k, kc0, v, vc0, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
		})
		return
	}
	var a [9]binding
	args, ok := e.kvArgs(a[:0], out, q, k, kc0, v, vc0, pos0+n)
	if !ok {
		return
	}
	p := sdpaParams{uint32(pos0), uint32(heads), uint32(kvHeads), uint32(dk), uint32(dv), uint32(k.Cols), uint32(v.Cols), scale, 0}
	e.runSinks(kernel, n, p, sinks, window, args...)
}

// runSinks launches an sdpa_sinks kernel over (heads, n) threadgroups with
// args plus the sinks, the parameters and the window.
func (e *Executor) runSinks(kernel string, n int, p sdpaParams, sinks []float32, window int, args ...binding) {
	var a [12]binding
	all := append(append(a[:0], args...), e.floats(3, sinks), e.upload(5, p), e.upload(11, uint32(window)))
	e.run(kernel, [3]int{int(p.Heads), n, 1}, [3]int{sdpaThreads, 1, 1}, all...)
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

// MoEClamped runs gpt-oss's experts on the device when every routed
// expert is MXFP4 (the host runs the call otherwise): per Resolve group,
// each expert's tokens are gathered into scratch rows on the host (nothing
// is in flight after the Sync), then gate(/up), biases, clamped_swiglu,
// down and its bias run over those rows, and moe_combine_rows adds the
// weighted rows to out.
func (e *Executor) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) error {
	if !contiguous(n, out, x) || !e.dev.hasKernel("clamped_swiglu") || !e.dev.hasKernel("qmv_mxfp4") {
		return e.hostMoEClamped(out, x, n, r, experts, b)
	}
	if err := e.Sync(); err != nil {
		return err
	}
	topK := r.TopK
	ids := r.IDs[:n*topK]
	for _, id := range ids {
		if id >= 0 && int(id) >= len(b.DownBias) {
			return fmt.Errorf("route to expert %d: biases for %d experts", id, len(b.DownBias))
		}
	}
	byExpert, groups, err := e.moe.expertRoutes(ids, topK, experts.NumExperts(), experts.MaxResolve())
	if err != nil {
		return err
	}
	weights := append(e.moe.weights[:0], r.Weights[:n*topK]...)
	e.moe.weights = weights
	clear(out.Data[:n*out.Cols])
	for gi, group := range groups {
		if gi > 0 {
			if err := e.Sync(); err != nil {
				return err
			}
		}
		run, err := e.moe.resolveGroup(experts, group, len(groups) == 1, weights, ids, topK)
		if err != nil {
			return err
		}
		if err := e.clampedGroup(out, x, run, byExpert, topK, weights, experts, b); err != nil {
			return err
		}
	}
	return e.err
}

// clampedExpert is one expert of a clampedGroup and the routes it serves.
type clampedExpert struct {
	id             int32
	gate, up, down *kernels.Matrix
	routes         []int
	first          int  // scratch row of routes[0]
	host           bool // not MXFP4: computed on the host
}

// clampedGroup encodes the resolved experts of one group (see MoEClamped).
func (e *Executor) clampedGroup(out, x *graph.Tensor, run []int32, byExpert map[int32][]int, topK int, weights []float32, experts graph.ExpertSet, b *graph.BiasedExperts) error {
	hidden := x.Cols
	list := e.moe.clamped[:0]
	defer func() { e.moe.clamped = list[:0] }()
	rows, inter := 0, 0
	for _, id := range run {
		gate, up, down := experts.Expert(id)
		if gate == nil || down == nil || (up == nil) != b.Interleaved {
			return fmt.Errorf("expert %d was resolved but lacks its matrices", id)
		}
		h, _, in, o := b.ExpertDims(gate, down)
		inter = in
		if h != hidden || o != out.Cols {
			return fmt.Errorf("expert %d: gate [%d,%d], down [%d,%d] do not fit hidden size %d", id, gate.Rows, gate.Cols, down.Rows, down.Cols, hidden)
		}
		host := b.Transposed || !mxfp4(gate) || !mxfp4(down) || (up != nil && !mxfp4(up))
		list = append(list, clampedExpert{id, gate, up, down, byExpert[id], rows, host})
		rows += len(byExpert[id])
	}
	if rows == 0 {
		return nil
	}
	gateRows := inter
	if b.Interleaved {
		gateRows = 2 * inter
	}
	xs := e.scratchBuf("moe.xs", 4*rows*hidden)
	gu := e.scratchBuf("moe.gu", 4*rows*gateRows)
	u := e.scratchBuf("moe.u", 4*rows*inter)
	h := e.scratchBuf("moe.h", 4*rows*inter)
	y := e.scratchBuf("moe.y", 4*rows*hidden)
	if e.err != nil {
		return e.err
	}
	// The tokens' rows of x, gathered on the host: nothing is in flight.
	xf := unsafe.Slice((*float32)(unsafe.Pointer(&xs.data[0])), rows*hidden)
	rowOf := make([]uint32, len(weights))
	for i := range rowOf {
		rowOf[i] = noRow
	}
	for _, ex := range list {
		for i, route := range ex.routes {
			t := route / topK
			copy(xf[(ex.first+i)*hidden:(ex.first+i+1)*hidden], x.Data[t*hidden:(t+1)*hidden])
			rowOf[route] = uint32(ex.first + i)
		}
	}
	rowsOf := func(index int, buf *buffer, first, n, width int) binding {
		return binding{index: index, buf: buf, off: 4 * first * width, n: 4 * n * width}
	}
	yf := unsafe.Slice((*float32)(unsafe.Pointer(&y.data[0])), rows*hidden)
	for _, ex := range list {
		if !ex.host {
			continue
		}
		e.hostOps[hostOp{"MoEClamped expert", matrixKind(ex.gate)}]++
		one := &graph.Routes{Tokens: 1, TopK: 1, IDs: []int32{ex.id}, Weights: []float32{1}}
		for i := range ex.routes {
			j := ex.first + i
			xr := &graph.Tensor{Rows: 1, Cols: hidden, Data: xf[j*hidden : (j+1)*hidden]}
			yr := &graph.Tensor{Rows: 1, Cols: hidden, Data: yf[j*hidden : (j+1)*hidden]}
			if err := e.host.MoEClamped(yr, xr, 1, one, experts, b); err != nil {
				return err
			}
		}
	}
	for _, ex := range list {
		if ex.host {
			continue
		}
		nr, f := len(ex.routes), ex.first
		e.mxRows(ex.gate, rowsOf(2, xs, f, nr, hidden), rowsOf(3, gu, f, nr, gateRows), nr, b.GateBias[ex.id])
		up := rowsOf(1, gu, f, nr, gateRows) // unused when interleaved
		if !b.Interleaved {
			e.mxRows(ex.up, rowsOf(2, xs, f, nr, hidden), rowsOf(3, u, f, nr, inter), nr, b.UpBias[ex.id])
			up = rowsOf(1, u, f, nr, inter)
		}
		count := nr * inter
		e.run("clamped_swiglu", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
			rowsOf(0, gu, f, nr, gateRows), up, rowsOf(2, h, f, nr, inter),
			e.upload(3, []uint32{uint32(count), uint32(inter), b32(b.Interleaved), math.Float32bits(b.Alpha), math.Float32bits(b.Limit)}))
		e.mxRows(ex.down, rowsOf(2, h, f, nr, inter), rowsOf(3, y, f, nr, hidden), nr, b.DownBias[ex.id])
	}
	n := len(weights) / topK
	e.run("moe_combine_rows", [3]int{ceilDiv(hidden, elemThreads), n, 1}, [3]int{elemThreads, 1, 1},
		binding{index: 0, buf: y, n: 4 * rows * hidden}, e.upload(1, rowOf), e.upload(2, weights),
		e.tensor(3, out, 0), e.upload(4, uint32(hidden)), e.upload(5, uint32(topK)))
	return e.err
}

// mxRows encodes out = W·x (+ bias) for n rows of x and out bound at
// indices 2 and 3, W an expert's MXFP4 matrix (bound uncached: a paged
// slot's bytes change when it is reused).
func (e *Executor) mxRows(w *kernels.Matrix, x, out binding, n int, bias []float32) {
	q := w.MX
	e.run("qmv_mxfp4", [3]int{ceilDiv(w.Rows, 8), n, 1}, [3]int{256, 1, 1},
		e.hostBytes(0, unsafe.Pointer(unsafe.SliceData(q.W)), len(q.W), false),
		e.hostBytes(1, unsafe.Pointer(unsafe.SliceData(q.Scales)), len(q.Scales), false),
		x, out, e.upload(4, []uint32{uint32(w.Rows), uint32(w.Cols)}))
	if bias != nil {
		count := n * w.Rows
		e.run("add_row", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
			at(0, out), e.floats(1, bias), at(2, out), e.upload(3, uint32(count)), e.upload(4, uint32(w.Rows)))
	}
}

func mxfp4(m *kernels.Matrix) bool { return m.MX != nil && m.MX.Mode == kernels.MXFP4 }

func b32(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

// hostMoEClamped runs the call on the host after everything encoded
// before it.
func (e *Executor) hostMoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) (err error) {
	e.onHost("MoEClamped", func() { err = e.host.MoEClamped(out, x, n, r, experts, b) })
	if err == nil {
		err = e.err
	}
	return err
}
