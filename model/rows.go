package model

import "github.com/mlx-moe/mlx-moe/kernels"

// Fused projections (Qwen3-Next's in_proj_qkvz and gated q_proj, MLA's
// kv_a_proj) interleave their parts per head. They are rearranged once, when
// the model is loaded, so that each part is a contiguous block of rows: its
// output is then a contiguous block of columns, read by the ops in place,
// and no head is ever copied at run time.

// permuteRows reorders m's rows in place so that row i becomes old row
// order[i] (order is a permutation of 0..Rows-1), keeping m's storage.
func permuteRows(m *kernels.Matrix, order []int) {
	switch {
	case m.F32 != nil:
		permute(m.F32, m.Cols, order)
	case m.BF16 != nil:
		permute(m.BF16, m.Cols, order)
	default:
		q := m.Q
		permute(q.W, m.Cols*q.Bits/32, order)
		permute(q.Scales, m.Cols/q.GroupSize, order)
		permute(q.Biases, m.Cols/q.GroupSize, order)
	}
}

// permute reorders the width-sized rows of v as permuteRows does.
func permute[T any](v []T, width int, order []int) {
	old := append([]T(nil), v...)
	for i, r := range order {
		copy(v[i*width:(i+1)*width], old[r*width:(r+1)*width])
	}
}

// rowBlock returns rows [r0, r0+n) of m as a matrix sharing m's storage.
func rowBlock(m *kernels.Matrix, r0, n int) *kernels.Matrix {
	out := &kernels.Matrix{Rows: n, Cols: m.Cols}
	switch {
	case m.F32 != nil:
		out.F32 = m.F32[r0*m.Cols : (r0+n)*m.Cols]
	case m.BF16 != nil:
		out.BF16 = m.BF16[r0*m.Cols : (r0+n)*m.Cols]
	default:
		q := m.Q
		words, groups := m.Cols*q.Bits/32, m.Cols/q.GroupSize
		out.Q = &kernels.Quant{Bits: q.Bits, GroupSize: q.GroupSize, F16Scales: q.F16Scales,
			W: q.W[r0*words : (r0+n)*words], Scales: q.Scales[r0*groups : (r0+n)*groups],
			Biases: q.Biases[r0*groups : (r0+n)*groups]}
	}
	return out
}

// splitRows rearranges m by order (see permuteRows) and cuts it into
// consecutive blocks of the given row counts, sharing m's storage.
func splitRows(m *kernels.Matrix, order []int, sizes ...int) []*kernels.Matrix {
	if m == nil {
		return make([]*kernels.Matrix, len(sizes))
	}
	permuteRows(m, order)
	out := make([]*kernels.Matrix, len(sizes))
	r0 := 0
	for i, n := range sizes {
		out[i] = rowBlock(m, r0, n)
		r0 += n
	}
	return out
}

// pick returns v's entries at the given indices (nil for a nil v).
func pick(v []float32, idx []int) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, len(idx))
	for i, j := range idx {
		out[i] = v[j]
	}
	return out
}
