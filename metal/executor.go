package metal

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Executor runs graph ops as Metal kernels from kernels/msl. Ops are encoded,
// not run: a whole forward pass goes into one command buffer that Sync (and
// Read) commits and waits for. MoE over anything but SlotExperts in a
// decode step is the exception: it commits what was encoded so far and
// waits, because the pager's Resolve is a host call that needs the router's
// choice (see MoE).
//
// Tensors live in shared-storage buffers and Tensor.Data is their host view
// (Apple silicon has unified memory), so host code reads results after Sync
// without a copy. Ops for which kernels/msl has no kernel (dense f32/bf16
// matrices, some shapes of the others) run on the host through the CPU
// executor after a commit; HostOps counts them.
//
// An Executor is used from one goroutine at a time, like a model Runner;
// only its SlotAllocator may be called concurrently.
type Executor struct {
	dev     device
	host    *cpu.Executor
	regions regions
	arena   arena
	ledger  ledger // every live buffer, for MemoryUse
	// weights are host slices (small model weights in the Go heap, or
	// large ones a loader did not read into AllocBuffer's buffers) copied
	// once into device buffers, by the address of their first byte. Each
	// entry keeps its host slice alive, so the collector cannot give the
	// address to another weight while the copy is cached.
	weights map[uintptr]weightCopy
	scratch map[string]*buffer
	retired []*buffer // freed at the next commit: encoded work may use them
	pending bool      // something was encoded since the last commit
	// handoffs are the host steps the next commit runs (MoE's event form);
	// event is the last event value they use.
	handoffs []handoff
	// resolves are the event form's handoff steps, made once and reused;
	// resolvesUsed of them belong to handoffs of the pass being encoded.
	resolves     []*eventResolve
	resolvesUsed int
	event        uint64
	err          error // the first failure since the last Sync; ops do nothing while it is set
	// allHitsLast says, per layer (by its expert->slot table), whether the
	// last decode resolve found every routed expert resident: the
	// prediction that picks the event form (see moeEvent). eventAlways
	// (tests) uses the event form whatever the prediction; eventMoEs
	// counts the MoE layers encoded in the event form.
	allHitsLast map[uintptr]bool
	eventAlways bool
	eventMoEs   int
	hostOps     map[hostOp]int
	// args and param are reused by every dispatch (run, upload), so
	// encoding allocates nothing.
	args    []binding
	param   [paramMax]byte
	encoded int // dispatches since the last commit, early or not
	moe     moeScratch
}

var (
	_ graph.Executor        = (*Executor)(nil)
	_ graph.BufferAllocator = (*Executor)(nil)
	_ graph.MemoryReporter  = (*Executor)(nil)
)

// weightCopy is a device copy of host weights and the host bytes it copies.
type weightCopy struct {
	buf  *buffer
	host []byte
}

func newExecutor(dev device) *Executor {
	return &Executor{
		dev:     dev,
		host:    cpu.New(),
		weights: map[uintptr]weightCopy{},
		scratch: map[string]*buffer{},
		hostOps: map[hostOp]int{},

		allHitsLast: map[uintptr]bool{},
	}
}

// Name is "metal (<device name>)".
func (e *Executor) Name() string { return "metal (" + e.dev.name() + ")" }

// WorkingSetBytes is the memory the GPU can use without paging
// (recommendedMaxWorkingSetSize): the budget for weights, caches and expert
// slots together.
func (e *Executor) WorkingSetBytes() int64 { return e.dev.workingSet() }

// HostOps returns how many times each op ran on the host because no kernel
// covers it (by op name), since the executor was made.
func (e *Executor) HostOps() map[string]int {
	out := make(map[string]int, len(e.hostOps))
	for k, v := range e.hostOps {
		name := k.op
		if k.kind != "" {
			name += " " + k.kind
		}
		out[name] += v
	}
	return out
}

// hostOp names an op that ran on the host and the kind of matrix it ran
// with ("MatMul", "bf16"), kept apart so that counting builds no string.
type hostOp struct{ op, kind string }

func (e *Executor) fail(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

// NewTensor allocates a zeroed tensor in a shared buffer.
func (e *Executor) NewTensor(rows, cols int) *graph.Tensor {
	n := rows * cols
	b, err := e.alloc(max(4*n, 4), memTensor)
	if err != nil {
		// The interface has no error here: remember it for Sync and hand
		// out host memory so the caller does not crash first.
		e.fail(fmt.Errorf("metal: tensor [%d,%d]: %w", rows, cols, err))
		return &graph.Tensor{Rows: rows, Cols: cols, Data: make([]float32, n)}
	}
	e.regions.add(b)
	return &graph.Tensor{Rows: rows, Cols: cols, Data: unsafe.Slice((*float32)(unsafe.Pointer(&b.data[0])), n), Dev: b}
}

// Free releases a tensor NewTensor made, once the work encoded so far is
// done with it (at the next commit). Views and tensors of other executors
// are left alone.
func (e *Executor) Free(t *graph.Tensor) {
	b, ok := t.Dev.(*buffer)
	if !ok || len(t.Data) == 0 || uintptr(unsafe.Pointer(&t.Data[0])) != b.base() || len(t.Data) != t.Rows*t.Cols {
		return
	}
	if e.regions.remove(b.base()) != nil {
		e.retired = append(e.retired, b)
	}
	t.Data, t.Dev = nil, nil
}

// Read commits, waits and returns the host view of t. An error is kept
// for the next Sync.
func (e *Executor) Read(t *graph.Tensor) []float32 {
	e.flush()
	return t.Data
}

// Sync commits the encoded ops, waits for them and returns the first error
// since the last Sync (a failed command buffer, an allocation, an op that
// could not be encoded). The error is then forgotten: it fails the forward
// pass that this Sync ends, not the executor, and the next pass starts
// clean.
func (e *Executor) Sync() error {
	e.flush()
	err := e.err
	e.err = nil
	return err
}

// flush commits what was encoded and waits for it, keeping any error for
// Sync. It commits even after an error: work encoded before it, and the
// handoffs its event waits need, must complete before the buffers and the
// event are used again.
func (e *Executor) flush() {
	if e.pending {
		e.pending = false
		hs := e.handoffs
		e.encoded = 0
		err := e.dev.commit(hs)
		// The handoffs have run: their list and resolves are reused.
		e.handoffs, e.resolvesUsed = hs[:0], 0
		if err != nil {
			e.fail(fmt.Errorf("metal: %w", err))
		}
	}
	e.arena.reset()
	for _, b := range e.retired {
		e.release(b)
	}
	e.retired = e.retired[:0]
}

// onHost runs an op on the host after everything encoded before it.
func (e *Executor) onHost(op string, f func()) { e.onHostWith(op, nil, f) }

// onHostWith is onHost for an op over matrix w, counted by its kind.
func (e *Executor) onHostWith(op string, w *kernels.Matrix, f func()) {
	if e.flush(); e.err != nil {
		return
	}
	k := hostOp{op: op}
	if w != nil {
		k.kind = matrixKind(w)
	}
	e.hostOps[k]++
	f()
}

// tensor binds t's rows from row on.
func (e *Executor) tensor(index int, t *graph.Tensor, row int) binding {
	return e.tensorAt(index, t, row, 0)
}

// tensorAt binds t from row row, column col on.
func (e *Executor) tensorAt(index int, t *graph.Tensor, row, col int) binding {
	b, ok := t.Dev.(*buffer)
	if !ok || len(t.Data) == 0 {
		e.fail(fmt.Errorf("metal: a [%d,%d] tensor was not made by this executor", t.Rows, t.Cols))
		return binding{}
	}
	skip := 4 * (row*t.RowStride() + col)
	off := int(uintptr(unsafe.Pointer(&t.Data[0]))-b.base()) + skip
	return binding{index: index, buf: b, off: off, n: 4*len(t.Data) - skip}
}

// contiguous reports whether the first n rows of every tensor are one run
// of values, as the kernels read and write them. The ops run a strided
// view (prefill through a column view) one row per dispatch, or on the
// host where a kernel takes a whole batch.
func contiguous(n int, ts ...*graph.Tensor) bool {
	for _, t := range ts {
		if !t.Contiguous(n) {
			return false
		}
	}
	return true
}

// rowView is row t of x, for running an op one row at a time.
func rowView(x *graph.Tensor, t int) *graph.Tensor { return x.View(t, 1, 0, x.Cols) }

// hostBytes binds host memory [p, p+n): in place when it is in one of the
// executor's buffers (slot pools, tensors), else as a copy. With cache the
// copy is made once and kept by address (model weights, which do not
// change); without it the bytes are uploaded for this command buffer only.
func (e *Executor) hostBytes(index int, p unsafe.Pointer, n int, cache bool) binding {
	if b, off, ok := e.regions.find(uintptr(p), n); ok {
		return binding{index: index, buf: b, off: off, n: n}
	}
	src := unsafe.Slice((*byte)(p), n)
	if !cache {
		b, off, err := e.arena.put(e.scratchAlloc, src)
		e.fail(err)
		return binding{index: index, buf: b, off: off, n: n}
	}
	if w, ok := e.weights[uintptr(p)]; ok && len(w.host) >= n {
		return binding{index: index, buf: w.buf, n: n}
	}
	b, err := e.alloc(max(n, 4), memWeights)
	if err != nil {
		e.fail(fmt.Errorf("metal: copying %d bytes of weights: %w", n, err))
		return binding{}
	}
	copy(b.data, src)
	if old, ok := e.weights[uintptr(p)]; ok {
		e.retired = append(e.retired, old.buf)
	}
	e.weights[uintptr(p)] = weightCopy{buf: b, host: src}
	return binding{index: index, buf: b, n: n}
}

func (e *Executor) floats(index int, x []float32) binding {
	return e.hostBytes(index, unsafe.Pointer(unsafe.SliceData(x)), 4*len(x), true)
}

// upload binds a copy of v (a parameter block, or a slice of numbers) for
// this command buffer. It is on the path of every dispatch, so it encodes
// without reflection: the bytes of v as they are in memory, which are the
// little-endian layout of the MSL struct on every host Go builds this for
// (amd64, arm64: TestParamBytes checks each type against encoding/binary).
func (e *Executor) upload(index int, v any) binding {
	data, err := paramBytes(&e.param, v)
	if err != nil {
		e.fail(fmt.Errorf("metal: %w", err))
		return binding{}
	}
	b, off, err := e.arena.put(e.scratchAlloc, data)
	e.fail(err)
	return binding{index: index, buf: b, off: off, n: len(data)}
}

// paramMax bounds a parameter block's size.
const paramMax = 64

// paramBytes returns the memory of v, a slice of 4-byte numbers, or a
// parameter block (a struct of 4-byte fields, no padding) copied into dst:
// v's copy in the type switch then stays on the stack.
func paramBytes(dst *[paramMax]byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case uint32:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case []int32:
		return sliceBytes(v), nil
	case []uint32:
		return sliceBytes(v), nil
	case []float32:
		return sliceBytes(v), nil
	case qmvParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case qmmParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case gatherParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case normParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case ropeParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case sdpaParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case kvStoreParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case routeParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case convParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case gateParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case deltaParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case splitParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case mergeParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case slotParts:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case layerNormParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	case sparseMixerParams:
		return dst[:copy(dst[:], valueBytes(&v))], nil
	}
	// reflect.TypeOf, unlike fmt's %T, does not make v escape.
	return nil, fmt.Errorf("no parameter encoding for %v", reflect.TypeOf(v))
}

func valueBytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

func sliceBytes[T int32 | uint32 | float32](s []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
}

// scratchBuf returns the executor's scratch buffer called name, at least n
// bytes long. "zeros" is never written: kernels bind it for zero inputs
// (an addend, slot ids and tables).
func (e *Executor) scratchBuf(name string, n int) *buffer {
	if b, ok := e.scratch[name]; ok && len(b.data) >= n {
		return b
	}
	b, err := e.alloc(max(n, 4), memScratch)
	if err != nil {
		e.fail(fmt.Errorf("metal: scratch %s of %d bytes: %w", name, n, err))
		return nil
	}
	if old, ok := e.scratch[name]; ok {
		e.retired = append(e.retired, old)
	}
	e.scratch[name] = b
	return b
}

func (e *Executor) run(kernel string, groups, threads [3]int, args ...binding) {
	if e.err != nil {
		return
	}
	for _, a := range args {
		if a.buf == nil {
			return // the binding already failed and set e.err
		}
	}
	e.pending = true
	// The device gets the executor's own slice: args stays on the caller's
	// stack, so a dispatch allocates nothing.
	e.args = append(e.args[:0], args...)
	if err := e.dev.dispatch(kernel, groups, threads, e.args); err != nil {
		e.fail(fmt.Errorf("metal: %s: %w", kernel, err))
	}
	// A long encode (a prompt) goes to the device in pieces, so the GPU
	// starts early (as MLX commits every few dozen ops). Not while a
	// handoff is pending: its event waits belong to the buffer being
	// encoded.
	if e.encoded++; e.encoded >= commitEvery && len(e.handoffs) == 0 {
		e.dev.submitEarly()
		e.encoded = 0
	}
}

// commitEvery is how many dispatches a command buffer gets before it is
// committed early (see run).
const commitEvery = 40

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// quantName is the name of a quantized kernel's instance for m
// ("qmv_b4_g64_bf16").
func quantName(kernel string, q *kernels.Quant) string {
	k := quantKey{kernel, q.Bits, q.GroupSize, q.F16Scales}
	quantNames.Lock()
	defer quantNames.Unlock()
	if name, ok := quantNames.m[k]; ok {
		return name
	}
	s := "bf16"
	if q.F16Scales {
		s = "f16"
	}
	name := fmt.Sprintf("%s_b%d_g%d_%s", kernel, q.Bits, q.GroupSize, s)
	if quantNames.m == nil {
		quantNames.m = map[quantKey]string{}
	}
	quantNames.m[k] = name
	return name
}

// quantNames remembers quantName's names: it is on the path of every
// quantized dispatch, which must not allocate.
var quantNames struct {
	sync.Mutex
	m map[quantKey]string
}

type quantKey struct {
	kernel      string
	bits, group int
	f16         bool
}

// quant binds a quantized matrix's words, scales and biases at index..index+2.
func (e *Executor) quant(index int, q *kernels.Quant, cache bool) [3]binding {
	return [3]binding{
		e.hostBytes(index, unsafe.Pointer(unsafe.SliceData(q.W)), 4*len(q.W), cache),
		e.hostBytes(index+1, unsafe.Pointer(unsafe.SliceData(q.Scales)), 2*len(q.Scales), cache),
		e.hostBytes(index+2, unsafe.Pointer(unsafe.SliceData(q.Biases)), 2*len(q.Biases), cache),
	}
}

func (e *Executor) Embed(out *graph.Tensor, table *kernels.Matrix, ids []int32) {
	if len(ids) == 0 {
		return
	}
	if table.Q == nil || !e.dev.hasKernel(quantName("dequant_rows", table.Q)) || !contiguous(len(ids), out) {
		e.onHostWith("Embed", table, func() { e.host.Embed(out, table, ids) })
		return
	}
	m := e.quant(0, table.Q, true)
	e.run(quantName("dequant_rows", table.Q), [3]int{ceilDiv(table.Cols, elemThreads), len(ids), 1}, [3]int{elemThreads, 1, 1},
		m[0], m[1], m[2], e.upload(3, ids), e.tensor(4, out, 0), e.upload(5, uint32(table.Cols)))
}

// Kernel parameter blocks, laid out as the structs of the same name in
// kernels/msl.
type (
	qmvParams    struct{ Rows, Cols uint32 }
	qmmParams    struct{ Rows, Cols, N uint32 }
	gatherParams struct{ Rows, Cols, XGroup uint32 }
	normParams   struct {
		Dim       uint32
		Eps       float32
		HasWeight uint32
	}
	ropeParams struct {
		Heads, HeadDim, RotaryDim uint32
		Scale                     float32
		Interleaved               uint32
	}
	sdpaParams struct {
		Pos0, Heads, KVHeads, DK, DV, KStride, VStride uint32
		Scale                                          float32
		HasGate                                        uint32
	}
	kvStoreParams struct{ Cols, LD uint32 }
	routeParams   struct {
		Experts, TopK, Sigmoid, HasBias, Groups, TopKGroups, Normalize uint32
		Scale                                                          float32
	}
	convParams  struct{ Channels, KernelSize, N uint32 }
	gateParams  struct{ HV, Count uint32 }
	deltaParams struct{ HK, HV, DK, DV, N uint32 }
)

// Launch shapes from the kernels' comments in kernels/msl.
const (
	qmvThreads     = 64 // 2 SIMD-groups of 4 rows each
	qmvRowsPerTG   = 8
	qmmTokens      = 8  // from this many tokens on, a MatMul uses qmm
	qmmTile        = 32 // qmm: 32 tokens x 32 rows per threadgroup, of simdgroup matrices
	qmmThreads     = 128
	elemThreads    = 256
	sdpaThreads    = 256
	sdpaMaxDim     = 256
	kvStoreThreads = 64 // kv_store_q: one thread per group of a row
	deltaThreads   = 128
	deltaMaxDK     = 256
	routeThreads   = 256
	routeMaxE      = 1024
	routeMaxGroups = 32
	convMaxKernel  = 8
)

func (e *Executor) MatMul(out, x *graph.Tensor, n int, w *kernels.Matrix, bias []float32) {
	if w.MX != nil && e.mxMatMul(out, x, n, w, bias) {
		return
	}
	if !contiguous(n, out, x) && w.Q != nil {
		for t := 0; t < n; t++ {
			e.MatMul(rowView(out, t), rowView(x, t), 1, w, bias)
		}
		return
	}
	if w.Q == nil || !e.dev.hasKernel(quantName("qmv", w.Q)) {
		e.onHostWith("MatMul", w, func() { e.host.MatMul(out, x, n, w, bias) })
		return
	}
	q := w.Q
	m := e.quant(0, q, true)
	if n >= qmmTokens && e.dev.hasKernel(quantName("qmm", q)) {
		e.run(quantName("qmm", q), [3]int{ceilDiv(w.Rows, qmmTile), ceilDiv(n, qmmTile), 1}, [3]int{qmmThreads, 1, 1},
			m[0], m[1], m[2], e.tensor(3, x, 0), e.tensor(4, out, 0), e.upload(5, qmmParams{uint32(w.Rows), uint32(w.Cols), uint32(n)}))
	} else {
		e.run(quantName("qmv", q), [3]int{ceilDiv(w.Rows, qmvRowsPerTG), n, 1}, [3]int{qmvThreads, 1, 1},
			m[0], m[1], m[2], e.tensor(3, x, 0), e.tensor(4, out, 0), e.upload(5, qmvParams{uint32(w.Rows), uint32(w.Cols)}))
	}
	if bias != nil {
		// One dispatch for the batch: the output rows are contiguous here.
		count := n * w.Rows
		e.run("add_row", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
			e.tensor(0, out, 0), e.floats(1, bias), e.tensor(2, out, 0), e.upload(3, uint32(count)), e.upload(4, uint32(w.Rows)))
	}
}

// MatMulHeads runs one qmv per head (and token, in a batch): each binds its
// head's input and output columns in place. Dense matrices run on the host.
func (e *Executor) MatMulHeads(out *graph.Tensor, outStep int, x *graph.Tensor, xStep int, n int, ws []*kernels.Matrix) {
	for _, w := range ws {
		if w.Q == nil || !e.dev.hasKernel(quantName("qmv", w.Q)) {
			e.onHostWith("MatMulHeads", w, func() { e.host.MatMulHeads(out, outStep, x, xStep, n, ws) })
			return
		}
	}
	for h, w := range ws {
		m := e.quant(0, w.Q, true)
		for t := 0; t < n; t++ {
			xb, ob := e.tensorAt(3, x, t, h*xStep), e.tensorAt(4, out, t, h*outStep)
			xb.n, ob.n = min(xb.n, 4*w.Cols), min(ob.n, 4*w.Rows)
			e.run(quantName("qmv", w.Q), [3]int{ceilDiv(w.Rows, qmvRowsPerTG), 1, 1}, [3]int{qmvThreads, 1, 1},
				m[0], m[1], m[2], xb, ob, e.upload(5, qmvParams{uint32(w.Rows), uint32(w.Cols)}))
		}
	}
}

func matrixKind(w *kernels.Matrix) string {
	switch {
	case w.MX != nil:
		return w.MX.Mode.String()
	case w.Q != nil:
		return fmt.Sprintf("q%d/g%d", w.Q.Bits, w.Q.GroupSize)
	case w.BF16 != nil:
		return "bf16"
	}
	return "f32"
}

// normThreads is a threadgroup size for rows of dim values: a multiple of 32
// up to 256.
func normThreads(dim int) int { return min(256, ceilDiv(dim, 32)*32) }

func (e *Executor) RMSNorm(out, x *graph.Tensor, n, dim int, w []float32, eps float32) {
	if !contiguous(n, out, x) {
		for t := 0; t < n; t++ {
			e.RMSNorm(rowView(out, t), rowView(x, t), 1, dim, w, eps)
		}
		return
	}
	rows := n * x.Cols / dim
	p := normParams{Dim: uint32(dim), Eps: eps}
	wb := e.tensor(1, x, 0) // not read without a weight
	if w != nil {
		p.HasWeight = 1
		wb = e.floats(1, w)
	}
	e.run("rmsnorm", [3]int{rows, 1, 1}, [3]int{normThreads(dim), 1, 1},
		e.tensor(0, x, 0), wb, e.tensor(2, out, 0), e.upload(3, p))
}

func (e *Executor) GatedRMSNorm(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	if !contiguous(n, out, x, z) {
		for t := 0; t < n; t++ {
			e.GatedRMSNorm(rowView(out, t), rowView(x, t), rowView(z, t), 1, dim, w, eps)
		}
		return
	}
	rows := n * x.Cols / dim
	e.run("rmsnorm_gated", [3]int{rows, 1, 1}, [3]int{normThreads(dim), 1, 1},
		e.tensor(0, x, 0), e.tensor(1, z, 0), e.floats(2, w), e.tensor(3, out, 0),
		e.upload(4, normParams{Dim: uint32(dim), Eps: eps, HasWeight: 1}))
}

func (e *Executor) Rope(x *graph.Tensor, pos []int32, heads, headDim int, p *kernels.RopeParams) {
	if len(pos) == 0 || p.RotaryDim == 0 {
		return // nothing rotates (attention without rope: Granite 4.0)
	}
	if x.RowStride() != heads*headDim && len(pos) > 1 {
		for t := range pos {
			e.Rope(rowView(x, t), pos[t:t+1], heads, headDim, p)
		}
		return
	}
	inter := uint32(0)
	if p.Interleaved {
		inter = 1
	}
	e.run("rope", [3]int{ceilDiv(p.RotaryDim/2, 32), heads, len(pos)}, [3]int{32, 1, 1},
		e.tensor(0, x, 0), e.upload(1, pos), e.floats(2, p.InvFreq),
		e.upload(3, ropeParams{uint32(heads), uint32(headDim), uint32(p.RotaryDim), p.Scale, inter}))
}

// CopyCols copies with the device's copy engine when the rows are
// contiguous on both sides, else with copy_rows: one dispatch either way.
func (e *Executor) CopyCols(dst *graph.Tensor, dstRow, dstCol int, src *graph.Tensor, srcRow, srcCol, n, cols int) {
	if n == 0 || cols == 0 || e.err != nil {
		return
	}
	d, s := e.tensor(0, dst, dstRow), e.tensor(0, src, srcRow)
	if d.buf == nil || s.buf == nil {
		return
	}
	e.pending = true
	ds, ss := dst.RowStride(), src.RowStride()
	if cols == ds && cols == ss {
		e.fail(e.dev.copy(d.buf, d.off, s.buf, s.off, 4*n*cols))
		return
	}
	from := binding{index: 0, buf: s.buf, off: s.off + 4*srcCol, n: 4 * ((n-1)*ss + cols)}
	out := binding{index: 1, buf: d.buf, off: d.off + 4*dstCol, n: 4 * ((n-1)*ds + cols)}
	e.run("copy_rows", [3]int{ceilDiv(cols, elemThreads), n, 1}, [3]int{elemThreads, 1, 1},
		from, out, e.upload(2, uint32(cols)), e.upload(3, uint32(ss)), e.upload(4, uint32(ds)))
}

func (e *Executor) Attention(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	if dk > sdpaMaxDim || dv > sdpaMaxDim || kvHeads <= 0 || heads%kvHeads != 0 || !contiguous(n, out, q) {
		e.onHost("Attention", func() { e.host.Attention(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale) })
		return
	}
	p := sdpaParams{uint32(pos0), uint32(heads), uint32(kvHeads), uint32(dk), uint32(dv),
		uint32(kCache.RowStride()), uint32(vCache.RowStride()), scale, 0}
	e.runSDPA("sdpa_f32", n, p,
		e.tensor(0, q, 0), e.tensor(1, kCache, 0), e.tensor(2, vCache, 0), e.tensor(3, q, 0), // gate: unused
		e.tensor(4, out, 0))
}

func (e *Executor) elementwise(kernel string, out, a, b *graph.Tensor, n int) {
	if !contiguous(n, out, a, b) {
		for t := 0; t < n; t++ {
			e.elementwise(kernel, rowView(out, t), rowView(a, t), rowView(b, t), 1)
		}
		return
	}
	m := n * out.Cols
	if m == 0 {
		return
	}
	e.run(kernel, [3]int{ceilDiv(m, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, a, 0), e.tensor(1, b, 0), e.tensor(2, out, 0), e.upload(3, uint32(m)))
}

func (e *Executor) Add(out, a, b *graph.Tensor, n int) { e.elementwise("add", out, a, b, n) }

func (e *Executor) SwiGLU(out, gate, up *graph.Tensor, n int) {
	e.elementwise("swiglu", out, gate, up, n)
}

// Zero clears a tensor in shared memory after the work encoded before it
// (recurrent state is reset once per sequence, so a round trip is cheap).
func (e *Executor) Zero(t *graph.Tensor) {
	if !t.Contiguous(t.Rows) {
		e.onHost("Zero", func() { e.host.Zero(t) })
		return
	}
	e.onHost("Zero", func() { clear(t.Data) })
}

// MulSigmoid with a full gate (Qwen3-Next's attention output gate) runs
// mul_sigmoid, and a one-column gate (a sigmoid-gated shared expert)
// mul_sigmoid_row, each over all n rows in one dispatch. Other shapes run on
// the host.
func (e *Executor) MulSigmoid(out, x, g *graph.Tensor, n int) {
	if g.Cols == x.Cols && out.Cols == x.Cols && e.dev.hasKernel("mul_sigmoid") && contiguous(n, out, x, g) {
		e.elementwise("mul_sigmoid", out, x, g, n)
		return
	}
	if g.Cols != 1 || out.Cols != x.Cols || !e.dev.hasKernel("mul_sigmoid_row") || !contiguous(n, out, x, g) {
		e.onHost("MulSigmoid", func() { e.host.MulSigmoid(out, x, g, n) })
		return
	}
	count := n * x.Cols
	if count == 0 {
		return
	}
	e.run("mul_sigmoid_row", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, x, 0), e.tensor(1, g, 0), e.tensor(2, out, 0), e.upload(3, uint32(count)), e.upload(4, uint32(x.Cols)))
}

// Route runs the router on the device. The ids and weights must be where
// the kernel can write them: the first time r is seen its slices are moved
// into a device buffer (same length and contents), so r.IDs and r.Weights
// are the host views of the device's output from then on.
func (e *Executor) Route(r *graph.Routes, logits *graph.Tensor, n int, p *kernels.Routing) {
	if p.SparseMixer {
		e.routeSparseMixer(r, logits, n, p)
		return
	}
	experts := logits.Cols
	if experts > routeMaxE || p.Groups > routeMaxGroups || p.TopK != r.TopK || p.TopK > experts ||
		(p.Groups > 1 && experts%p.Groups != 0) || !contiguous(n, logits) {
		e.onHost("Route", func() { e.host.Route(r, logits, n, p) })
		return
	}
	ids, weights, ok := e.routeOutputs(r, n)
	if !ok {
		return
	}
	bias := e.tensor(1, logits, 0) // not read without a bias
	rp := routeParams{Experts: uint32(experts), TopK: uint32(p.TopK), Groups: uint32(p.Groups),
		TopKGroups: uint32(p.TopKGroups), Scale: p.Scale}
	if p.Sigmoid {
		rp.Sigmoid = 1
	}
	if p.Normalize {
		rp.Normalize = 1
	}
	if p.CorrectionBias != nil {
		rp.HasBias = 1
		bias = e.floats(1, p.CorrectionBias)
	}
	e.run("route", [3]int{n, 1, 1}, [3]int{routeThreads, 1, 1},
		e.tensor(0, logits, 0), bias, ids, weights, e.upload(4, rp))
}

// routeOutputs sets r.Tokens and binds r's ids and weights (see
// routeBuffers); ok is false when there is nothing to route or the binding
// failed.
func (e *Executor) routeOutputs(r *graph.Routes, n int) (ids, weights binding, ok bool) {
	r.Tokens = n
	if n == 0 {
		return ids, weights, false
	}
	ids, weights = e.routeBuffers(r)
	return ids, weights, ids.buf != nil && weights.buf != nil
}

// routeBuffers binds r's ids (index 2) and weights (index 3), moving them
// into device memory first if needed.
func (e *Executor) routeBuffers(r *graph.Routes) (ids, weights binding) {
	move := func(p unsafe.Pointer, n int) (*buffer, int) {
		if b, off, ok := e.regions.find(uintptr(p), n); ok {
			return b, off
		}
		b, err := e.alloc(max(n, 4), memScratch)
		if err != nil {
			e.fail(fmt.Errorf("metal: routes: %w", err))
			return nil, 0
		}
		copy(b.data, unsafe.Slice((*byte)(p), n))
		e.regions.add(b)
		return b, 0
	}
	if len(r.IDs) == 0 || len(r.Weights) == 0 {
		e.fail(fmt.Errorf("metal: Route: routes have no room for ids or weights"))
		return
	}
	ib, ioff := move(unsafe.Pointer(&r.IDs[0]), 4*len(r.IDs))
	wb, woff := move(unsafe.Pointer(&r.Weights[0]), 4*len(r.Weights))
	if ib == nil || wb == nil {
		return
	}
	r.IDs = unsafe.Slice((*int32)(unsafe.Pointer(&ib.data[ioff])), len(r.IDs))
	r.Weights = unsafe.Slice((*float32)(unsafe.Pointer(&wb.data[woff])), len(r.Weights))
	return binding{index: 2, buf: ib, off: ioff, n: 4 * len(r.IDs)}, binding{index: 3, buf: wb, off: woff, n: 4 * len(r.Weights)}
}

func (e *Executor) Conv1d(out, x *graph.Tensor, n int, state *graph.Tensor, w []float32, kernel int) {
	if kernel > convMaxKernel || kernel < 1 || !contiguous(n, out, x) || !state.Contiguous(state.Rows) {
		e.onHost("Conv1d", func() { e.host.Conv1d(out, x, n, state, w, kernel) })
		return
	}
	e.run("conv1d", [3]int{ceilDiv(x.Cols, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, state, 0), e.tensor(1, x, 0), e.floats(2, w), e.tensor(3, out, 0),
		e.upload(4, convParams{uint32(x.Cols), uint32(kernel), uint32(n)}))
}

// Activate runs on gated_delta_gates, whose two outputs are
// -exp(a_log)*softplus(a+dt_bias) and sigmoid(b): Softplus with a negative
// scale binds a_log = log(-scale) (computed per call: one value per
// column); Sigmoid without shift or scale takes the second output. The
// other output goes to a scratch buffer. Other forms run on the host.
func (e *Executor) Activate(out, x *graph.Tensor, n int, f graph.Activation, shift, scale []float32) {
	count := n * x.Cols
	if count == 0 {
		return
	}
	kernelFits := contiguous(n, out, x) && out.Cols == x.Cols && e.dev.hasKernel("gated_delta_gates")
	var logRate []float32
	switch {
	case !kernelFits:
	case f == graph.Sigmoid && shift == nil && scale == nil:
		logRate = make([]float32, x.Cols) // read, not used for beta
	case f == graph.Softplus && scale != nil:
		logRate = make([]float32, x.Cols)
		for i, s := range scale {
			if !(s < 0) {
				logRate = nil
				break
			}
			logRate[i] = float32(math.Log(float64(-s)))
		}
	}
	if logRate == nil {
		e.onHost("Activate "+f.String(), func() { e.host.Activate(out, x, n, f, shift, scale) })
		return
	}
	if shift == nil {
		shift = make([]float32, x.Cols)
	}
	discard := e.scratchBuf("activate.discard", 4*count)
	if discard == nil {
		return
	}
	gOut, betaOut := binding{index: 4, buf: discard, n: 4 * count}, e.tensor(5, out, 0)
	if f == graph.Softplus {
		gOut, betaOut = e.tensor(4, out, 0), binding{index: 5, buf: discard, n: 4 * count}
	}
	e.run("gated_delta_gates", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, x, 0), e.tensor(1, x, 0), e.upload(2, logRate), e.upload(3, shift),
		gOut, betaOut, e.upload(6, gateParams{uint32(x.Cols), uint32(count)}))
}

func (e *Executor) GatedDelta(out, q, k, v, g, beta *graph.Tensor, n int, state *graph.Tensor, hk, hv, dk, dv int) {
	if dk > deltaMaxDK || hk <= 0 || hv%hk != 0 || !contiguous(n, out, q, k, v, g, beta) {
		e.onHost("GatedDelta", func() { e.host.GatedDelta(out, q, k, v, g, beta, n, state, hk, hv, dk, dv) })
		return
	}
	kernel := "gated_delta"
	if n > 1 && e.dev.hasKernel("gated_delta_chunked") {
		kernel = "gated_delta_chunked" // same buffers and launch; two state sweeps per chunk, not per token
	}
	e.run(kernel, [3]int{hv, 1, 1}, [3]int{deltaThreads, 1, 1},
		e.tensor(0, state, 0), e.tensor(1, q, 0), e.tensor(2, k, 0), e.tensor(3, v, 0),
		e.tensor(4, g, 0), e.tensor(5, beta, 0), e.tensor(6, out, 0),
		e.upload(7, deltaParams{uint32(hk), uint32(hv), uint32(dk), uint32(dv), uint32(n)}))
}
