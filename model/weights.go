package model

import (
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// hostBuffers is the BufferAllocator for executors without buffers of
// their own: anonymous memory outside the Go heap (the pager's default
// allocator).
type hostBuffers struct{}

func (hostBuffers) AllocBuffer(n int) ([]byte, error) {
	return experts.DefaultAllocator().Alloc(0, experts.SlotPool, int64(n))
}

func (hostBuffers) FreeBuffer(b []byte) error { return experts.DefaultAllocator().Free(b) }

// weights reads named tensors from the index into kernel types. The first
// error sticks: family constructors read every tensor they need and check
// err once at the end.
type weights struct {
	ix   *Index
	cfg  *Config
	err  error
	lazy bool // describe routed experts instead of reading them
	// buffers holds the large weights; offHeap are the buffers taken from
	// it, freed by Close.
	buffers graph.BufferAllocator
	offHeap [][]byte
}

func (w *weights) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

func (w *weights) has(name string) bool {
	_, ok := w.ix.Tensor(name)
	return ok
}

func (w *weights) tensor(name string) *TensorInfo {
	t, ok := w.ix.Tensor(name)
	if !ok {
		w.fail("tensor %s is missing from %s", name, w.ix.Dir)
		return nil
	}
	return t
}

func (w *weights) bytes(t *TensorInfo) []byte {
	if t == nil || w.err != nil {
		return nil
	}
	if t.Length < offHeapMin {
		b, err := w.ix.ReadBytes(t)
		if err != nil {
			w.fail("%v", err)
		}
		return b
	}
	// Large weights live outside the Go heap (gigabytes of live heap would
	// let the collector's target, twice the live heap by default, run far
	// past a memory budget), in the executor's buffers when it has them.
	b, err := w.buffers.AllocBuffer(int(t.Length))
	if err != nil {
		w.fail("tensor %s: allocating %d bytes: %v", t.Name, t.Length, err)
		return nil
	}
	w.offHeap = append(w.offHeap, b)
	if err := w.ix.ReadInto(t, b); err != nil {
		w.fail("%v", err)
	}
	return b
}

// offHeapMin is the size from which a tensor is read into memory outside
// the Go heap.
var offHeapMin int64 = 1 << 20

// floats reads a BF16/F16/F32 tensor as float32.
func (w *weights) floats(t *TensorInfo) []float32 {
	b := w.bytes(t)
	if b == nil {
		return nil
	}
	out := make([]float32, t.Elements())
	switch t.DType {
	case F32:
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(out)))
	case BF16:
		for i, v := range asU16(b) {
			out[i] = kernels.BF16ToF32(v)
		}
	case F16:
		for i, v := range asU16(b) {
			out[i] = kernels.F16ToF32(v)
		}
	default:
		w.fail("tensor %s: dtype %s where a float tensor was expected", t.Name, t.DType)
		return nil
	}
	return out
}

// vector reads a 1-D float tensor of the given length.
func (w *weights) vector(name string, n int) []float32 {
	t := w.tensor(name)
	if t == nil {
		return nil
	}
	if t.Elements() != n {
		w.fail("tensor %s has shape %v, expected %d values (config %s)", name, t.Shape, n, w.cfg.Path)
		return nil
	}
	return w.floats(t)
}

// optVector is vector for a tensor that may be absent.
func (w *weights) optVector(name string, n int) []float32 {
	if !w.has(name) {
		return nil
	}
	return w.vector(name, n)
}

func asU16(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

func asU32(b []byte) []uint32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// linear reads module.weight (quantized with module.scales/.biases when the
// checkpoint has them) as a [rows, cols] matrix.
func (w *weights) linear(module string, rows, cols int) *kernels.Matrix {
	ms := w.stack(module, 0, rows, cols)
	if ms == nil {
		return nil
	}
	return ms[0]
}

// linearTensors are the validated tensors of a linear layer (stacked over
// experts or not): the weight and, when quantized, its scales and biases.
type linearTensors struct {
	weight, scales, biases *TensorInfo
	quant                  QuantParams // zero when not quantized
}

// linearInfo finds and checks the tensors of module as [n, rows, cols]
// (n = 0: not stacked) without reading them.
func (w *weights) linearInfo(module string, n, rows, cols int) *linearTensors {
	t := w.tensor(module + ".weight")
	if t == nil || w.err != nil {
		return nil
	}
	lead := []int{}
	if n > 0 {
		lead = []int{n}
	}
	want := func(tail ...int) []int { return append(append([]int{}, lead...), tail...) }
	shapeIs := func(s []int, tail ...int) bool { return slices.Equal(s, want(tail...)) }
	if t.DType != U32 {
		if !shapeIs(t.Shape, rows, cols) {
			w.fail("tensor %s has shape %v, expected %v (sizes from %s)", t.Name, t.Shape, want(rows, cols), w.cfg.Path)
			return nil
		}
		return &linearTensors{weight: t}
	}
	qp, ok := w.cfg.Quant.For(module)
	if !ok {
		w.fail("tensor %s is packed (U32) but config.json has no quantization for %s", t.Name, module)
		return nil
	}
	if !shapeIs(t.Shape, rows, cols*qp.Bits/32) {
		w.fail("tensor %s has shape %v, expected %v at %d bits (hidden sizes from %s)", t.Name, t.Shape, want(rows, cols*qp.Bits/32), qp.Bits, w.cfg.Path)
		return nil
	}
	if qp.MX() != 0 {
		// Microscaling: uint8 scales, no biases.
		st := w.tensor(module + ".scales")
		if st == nil {
			return nil
		}
		if !shapeIs(st.Shape, rows, cols/qp.GroupSize) || st.DType != U8 {
			w.fail("%s scales are %s%v, expected U8 %v (%s)", module, st.DType, st.Shape, want(rows, cols/qp.GroupSize), qp.Mode)
			return nil
		}
		return &linearTensors{weight: t, scales: st, quant: qp}
	}
	st, bt := w.tensor(module+".scales"), w.tensor(module+".biases")
	if st == nil || bt == nil {
		return nil
	}
	groups := cols / qp.GroupSize
	if !shapeIs(st.Shape, rows, groups) || !shapeIs(bt.Shape, rows, groups) || st.DType != bt.DType || (st.DType != BF16 && st.DType != F16) {
		w.fail("%s scales/biases are %s%v/%s%v, expected BF16 or F16 %v (group size %d)", module, st.DType, st.Shape, bt.DType, bt.Shape, want(rows, groups), qp.GroupSize)
		return nil
	}
	return &linearTensors{weight: t, scales: st, biases: bt, quant: qp}
}

// stack reads a linear layer stacked over n experts ([n, rows, cols]; n = 0
// means not stacked) and returns one matrix per expert, sharing memory.
func (w *weights) stack(module string, n, rows, cols int) []*kernels.Matrix {
	lt := w.linearInfo(module, n, rows, cols)
	if lt == nil {
		return nil
	}
	out := make([]*kernels.Matrix, max(n, 1))
	if mx := lt.quant.MX(); mx != 0 {
		codes, sc := w.bytes(lt.weight), w.bytes(lt.scales)
		if w.err != nil {
			return nil
		}
		per, groups := rows*cols*mx.Bits()/8, rows*cols/mx.GroupSize()
		for e := range out {
			out[e] = &kernels.Matrix{Rows: rows, Cols: cols, MX: &kernels.MXQuant{Mode: mx,
				W: codes[e*per : (e+1)*per], Scales: sc[e*groups : (e+1)*groups]}}
		}
		return out
	}
	if lt.quant.Bits != 0 {
		wq, sc, bi := asU32(w.bytes(lt.weight)), asU16(w.bytes(lt.scales)), asU16(w.bytes(lt.biases))
		if w.err != nil {
			return nil
		}
		qp := lt.quant
		words, per := rows*cols*qp.Bits/32, rows*cols/qp.GroupSize
		for e := range out {
			out[e] = &kernels.Matrix{Rows: rows, Cols: cols, Q: &kernels.Quant{
				Bits: qp.Bits, GroupSize: qp.GroupSize, F16Scales: lt.scales.DType == F16,
				W: wq[e*words : (e+1)*words], Scales: sc[e*per : (e+1)*per], Biases: bi[e*per : (e+1)*per]}}
		}
		return out
	}
	var data []float32
	if lt.weight.DType == F8E4M3 {
		data = w.fp8(lt.weight, module, rows, cols, len(out))
	} else {
		data = w.floats(lt.weight)
	}
	if data == nil {
		return nil
	}
	for e := range out {
		out[e] = &kernels.Matrix{Rows: rows, Cols: cols, F32: data[e*rows*cols : (e+1)*rows*cols]}
	}
	return out
}

// denseStack reads an unquantized [n, rows, cols] tensor stored under its
// own name (no .weight suffix) as n matrices.
func (w *weights) denseStack(name string, n, rows, cols int) []*kernels.Matrix {
	t := w.tensor(name)
	if t == nil || w.err != nil {
		return nil
	}
	if len(t.Shape) != 3 || t.Shape[0] != n || t.Shape[1] != rows || t.Shape[2] != cols {
		w.fail("tensor %s has shape %v, expected [%d %d %d] (sizes from %s)", name, t.Shape, n, rows, cols, w.cfg.Path)
		return nil
	}
	data := w.floats(t)
	if data == nil {
		return nil
	}
	out := make([]*kernels.Matrix, n)
	for e := range out {
		out[e] = &kernels.Matrix{Rows: rows, Cols: cols, F32: data[e*rows*cols : (e+1)*rows*cols]}
	}
	return out
}

// fp8 dequantizes an F8_E4M3 weight with its weight_scale_inv blocks (the
// original DeepSeek-V3 / GLM FP8 shards: one scale per 128x128 block).
func (w *weights) fp8(t *TensorInfo, module string, rows, cols, count int) []float32 {
	st := w.tensor(module + ".weight_scale_inv")
	if st == nil {
		return nil
	}
	scales := w.floats(st)
	raw := w.bytes(t)
	if w.err != nil {
		return nil
	}
	br := (rows + 127) / 128
	bc := (cols + 127) / 128
	if len(scales) != count*br*bc {
		w.fail("%s.weight_scale_inv has %d values, expected %d (128x128 blocks of %dx%d)", module, len(scales), count*br*bc, rows, cols)
		return nil
	}
	out := make([]float32, len(raw))
	for e := 0; e < count; e++ {
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				i := (e*rows+r)*cols + c
				out[i] = kernels.FP8E4M3ToF32(raw[i]) * scales[(e*br+r/128)*bc+c/128]
			}
		}
	}
	return out
}

// prefixOf returns the "model." style prefix families put before "layers".
func prefixOf(ix *Index) string {
	for _, p := range []string{"model.", "language_model.model.", "model.language_model.", ""} {
		if _, ok := ix.Tensor(p + "embed_tokens.weight"); ok {
			return p
		}
	}
	for _, n := range ix.Names() {
		if i := strings.Index(n, "layers."); i >= 0 {
			return n[:i]
		}
	}
	return "model."
}
