//go:build !purego

package kernels

import "unsafe"

// Assembly row kernels (qmv_amd64.s): one row of a quantized matrix dotted
// with one token's x, for groups groups of steps*32 values each.

//go:noescape
func qdot4AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

//go:noescape
func qdot8AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

//go:noescape
func qdotBitsAVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool, t *bitsTable) float32

// bitsTable tells qdotBitsAVX2 how to unpack eight values of one width: the
// byte shuffle that puts value j's two bytes in 32-bit lane j, the shift that
// aligns it, the mask, and the bytes eight values occupy.
type bitsTable struct {
	shuffle [32]byte
	shift   [8]uint32
	mask    [8]uint32
	stride  int64
}

// bitsTables is indexed by bit width.
var bitsTables = func() (t [9]bitsTable) {
	for bits := 1; bits <= 8; bits++ {
		bt := &t[bits]
		for j := 0; j < 8; j++ {
			bit := j * bits
			lane := j % 4
			// Both 128-bit halves hold the same eight bytes (a broadcast
			// qword), so a half's shuffle indices name the same bytes.
			half := (j / 4) * 16
			bt.shuffle[half+lane*4] = byte(bit / 8)
			bt.shuffle[half+lane*4+1] = byte(bit/8 + 1)
			bt.shuffle[half+lane*4+2] = 0x80
			bt.shuffle[half+lane*4+3] = 0x80
			bt.shift[j] = uint32(bit % 8)
			bt.mask[j] = 1<<bits - 1
		}
		bt.stride = int64(bits)
	}
	return t
}()

// qmvSIMD runs the decode matvec with the AVX2 kernels; it reports false
// when the CPU lacks them (the caller then runs the Go kernels).
func qmvSIMD(out, x []float32, n int, m *Matrix) bool {
	if !hasAVX2FMA {
		return false
	}
	q := m.Q
	cols, groups := m.Cols, m.Cols/q.GroupSize
	buf := getFloats(n * (cols + groups))
	defer putFloats(buf)
	xs, sums := (*buf)[:n*cols], (*buf)[n*cols:]
	for t := 0; t < n; t++ {
		xt := x[t*cols : (t+1)*cols]
		for g := 0; g < groups; g++ {
			var s float32
			for _, v := range xt[g*q.GroupSize : (g+1)*q.GroupSize] {
				s += v
			}
			sums[t*groups+g] = s
		}
		if q.Bits == 4 {
			permuteNibbles(xs[t*cols:(t+1)*cols], xt)
		} else {
			copy(xs[t*cols:], xt)
		}
	}
	rowBytes := cols * q.Bits / 8
	wb := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q.W))), 4*len(q.W))
	steps := q.GroupSize / 32
	table := &bitsTables[q.Bits]
	parallelFor(m.Rows, cols*n, func(lo, hi int) {
		var pad []byte
		for r := lo; r < hi; r++ {
			w := wb[r*rowBytes : (r+1)*rowBytes]
			if q.Bits != 4 && q.Bits != 8 && len(wb)-r*rowBytes < rowBytes+8 {
				// The generic kernel reads a few bytes past the row; give
				// the matrix's last row room to do that.
				pad = append(append(pad[:0], w...), make([]byte, 8)...)
				w = pad
			}
			sc, bi := &q.Scales[r*groups], &q.Biases[r*groups]
			for t := 0; t < n; t++ {
				xp, sp := &xs[t*cols], &sums[t*groups]
				var v float32
				switch q.Bits {
				case 4:
					v = qdot4AVX2(&w[0], xp, sc, bi, sp, groups, steps, q.F16Scales)
				case 8:
					v = qdot8AVX2(&w[0], xp, sc, bi, sp, groups, steps, q.F16Scales)
				default:
					v = qdotBitsAVX2(&w[0], xp, sc, bi, sp, groups, steps, q.F16Scales, table)
				}
				out[t*m.Rows+r] = v
			}
		}
	})
	return true
}
