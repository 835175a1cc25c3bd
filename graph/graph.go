package graph

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// Tensor is a [Rows, Cols] float32 buffer owned by an executor, or a view
// of part of one. On unified-memory devices Data aliases the device buffer;
// Dev is the executor's own handle (shared by a tensor and its views).
//
// Row r of a tensor is Data[r*RowStride() : r*RowStride()+Cols]. A tensor
// an executor makes is contiguous (Stride 0); a column view (View) keeps its
// parent's row stride, so the heads or parts of a fused projection are read
// and written in place, never copied out.
type Tensor struct {
	Rows, Cols int
	// Stride is the distance in Data between the starts of two rows; 0
	// means Cols.
	Stride int
	Data   []float32
	Dev    any
}

// RowStride is the distance in Data between the starts of two rows.
func (t *Tensor) RowStride() int {
	if t.Stride == 0 {
		return t.Cols
	}
	return t.Stride
}

// Contiguous reports whether the first n rows are one run of n*Cols values
// in Data.
func (t *Tensor) Contiguous(n int) bool { return n <= 1 || t.RowStride() == t.Cols }

// Row returns row r.
func (t *Tensor) Row(r int) []float32 {
	s := t.RowStride()
	return t.Data[r*s : r*s+t.Cols]
}

// View returns rows [r0, r0+rows) and columns [c0, c0+cols) of t, sharing
// its storage. Views are made when a model or cache is planned, not per
// step; SetView re-aims an existing one.
func (t *Tensor) View(r0, rows, c0, cols int) *Tensor {
	return new(Tensor).SetView(t, r0, rows, c0, cols)
}

// SetView makes v rows [r0, r0+rows) and columns [c0, c0+cols) of t and
// returns v. It panics when the block is not inside t (a programming
// error: the sizes come from the model's own plan).
func (v *Tensor) SetView(t *Tensor, r0, rows, c0, cols int) *Tensor {
	if r0 < 0 || rows < 0 || c0 < 0 || cols < 0 || r0+rows > t.Rows || c0+cols > t.Cols {
		panic(fmt.Sprintf("graph: view [%d+%d, %d+%d] outside a [%d,%d] tensor", r0, rows, c0, cols, t.Rows, t.Cols))
	}
	s := t.RowStride()
	start, end := r0*s+c0, r0*s+c0
	if rows > 0 {
		end = (r0+rows-1)*s + c0 + cols
	}
	*v = Tensor{Rows: rows, Cols: cols, Stride: s, Data: t.Data[start:end], Dev: t.Dev}
	if cols == s {
		v.Stride = 0
	}
	return v
}

// Routes is the router's choice for a batch: TopK expert ids and weights
// per token, in device-visible memory.
type Routes struct {
	Tokens, TopK int
	IDs          []int32
	Weights      []float32
}

// ExpertSet is one MoE layer's routed experts. Resolve makes the given
// distinct experts usable (paging them in if needed) and returns, per id,
// whether it is available: under the exact policy every id is; under the
// fast policy a missing one is skipped and the token's remaining weights
// renormalised. An expert stays usable until the next Resolve, and the
// present slice may be reused by it.
type ExpertSet interface {
	NumExperts() int
	// MaxResolve is the most distinct experts one Resolve can take (the
	// free slots of a pager); 0 means no limit. Executors split larger
	// batches into several Resolve calls.
	MaxResolve() int
	Resolve(ids []int32) (present []bool, err error)
	// Expert returns the SwiGLU matrices of a resolved expert.
	Expert(id int32) (gate, up, down *kernels.Matrix)
}

// BufferAllocator is an optional Executor capability: host-visible buffers
// that the executor's kernels read in place (unified memory). Weights a
// loader reads into them are bound where they are, never copied to the
// device a second time.
type BufferAllocator interface {
	AllocBuffer(n int) ([]byte, error)
	FreeBuffer(b []byte) error
}

// Activation is an element-wise function for Activate.
type Activation int

const (
	// Sigmoid is 1/(1+exp(-x)).
	Sigmoid Activation = iota
	// Softplus is log(1+exp(x)), and x itself above 20 (as torch computes
	// it).
	Softplus
)

// String names the function.
func (f Activation) String() string {
	switch f {
	case Sigmoid:
		return "sigmoid"
	case Softplus:
		return "softplus"
	}
	return fmt.Sprintf("Activation(%d)", int(f))
}

// Executor runs ops. Sizes come from the tensors; n is the number of rows
// (tokens) an op works on. Any tensor argument may be a view (see
// Tensor.View): executors honour its row stride.
type Executor interface {
	Name() string
	// NewTensor allocates a zeroed contiguous tensor.
	NewTensor(rows, cols int) *Tensor
	// Free releases a tensor NewTensor made (not a view) once the ops
	// issued so far are done with it; t must not be used afterwards.
	Free(t *Tensor)
	// Read returns the host view of t after all issued ops completed.
	Read(t *Tensor) []float32
	// Sync waits for all issued ops.
	Sync() error

	// Embed writes the rows ids of table into out.
	Embed(out *Tensor, table *kernels.Matrix, ids []int32)
	// MatMul: out[:n] = x[:n] W^T (+ bias when bias is not nil).
	MatMul(out, x *Tensor, n int, w *kernels.Matrix, bias []float32)
	// MatMulHeads is a batched per-head MatMul: for each head h,
	// out[:n, h*outStep : h*outStep+ws[h].Rows] = x[:n, h*xStep :
	// h*xStep+ws[h].Cols] ws[h]^T. With xStep 0 every head reads the same
	// input columns.
	MatMulHeads(out *Tensor, outStep int, x *Tensor, xStep int, n int, ws []*kernels.Matrix)
	// RMSNorm normalises each dim-sized chunk of the first n rows of x.
	RMSNorm(out, x *Tensor, n, dim int, w []float32, eps float32)
	// Rope rotates the heads of x (rows of heads*headDim) at positions pos.
	Rope(x *Tensor, pos []int32, heads, headDim int, p *kernels.RopeParams)
	// Zero sets every value of t to 0.
	Zero(t *Tensor)
	// CopyCols copies an n-row, cols-column block of src at (srcRow,
	// srcCol) into dst at (dstRow, dstCol) (whole caches: snapshots).
	CopyCols(dst *Tensor, dstRow, dstCol int, src *Tensor, srcRow, srcCol, n, cols int)
	// Attention: causal attention of q's first n rows (positions pos0..)
	// against caches holding pos0+n rows; kv head g of row j is at column
	// g*dk of kCache and g*dv of vCache (kCache and vCache may be views of
	// the same tensor, as in latent attention).
	Attention(out, q, kCache, vCache *Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32)
	// Add: out = a + b over the first n rows.
	Add(out, a, b *Tensor, n int)
	// SwiGLU: out = silu(gate) * up over the first n rows.
	SwiGLU(out, gate, up *Tensor, n int)
	// Activate: out = scale * f(x + shift) element-wise over the first n
	// rows, with shift and scale per column (nil: 0 and 1). out may be x.
	Activate(out, x *Tensor, n int, f Activation, shift, scale []float32)
	// MulSigmoid: out = x * sigmoid(g) element-wise (g has x's shape), or,
	// when g has one column, each row of x scaled by sigmoid of g's value.
	MulSigmoid(out, x, g *Tensor, n int)
	// Route picks experts from router logits (first n rows).
	Route(r *Routes, logits *Tensor, n int, p *kernels.Routing)
	// MoE: out[:n] = sum_k w_k * expert_k(x) over each token's routes.
	MoE(out, x *Tensor, n int, r *Routes, experts ExpertSet) error

	// Linear attention (Gated DeltaNet). Conv1d: causal depthwise
	// convolution + SiLU of x's first n rows with weight w [channels,
	// kernel], continuing from state [channels, kernel-1] and updating it.
	Conv1d(out, x *Tensor, n int, state *Tensor, w []float32, kernel int)
	// GatedDelta runs the gated delta rule over n tokens (q, k [n, hk*dk],
	// v [n, hv*dv], g, beta [n, hv]) from state [hv, dk*dv], updating it.
	GatedDelta(out, q, k, v, g, beta *Tensor, n int, state *Tensor, hk, hv, dk, dv int)
	// GatedRMSNorm: out = rmsnorm(x) * w * silu(z) per dim-sized chunk.
	GatedRMSNorm(out, x, z *Tensor, n, dim int, w []float32, eps float32)
}
