package kernels

// Decode-time quantized matrix-vector products. For each group the dot
// product is scale*Σ(q-c)·x + (bias+c*scale)*Σx with c the middle code, so
// x's group sums are computed once per vector and the weights are never
// dequantized into memory. Centring q keeps the two terms from being large
// and opposite (bias is typically about -c*scale), which would cost float32
// precision. 4 and 8 bits (the common cases) unpack whole words; other
// widths fall back to dequantizing a row.

// qmvTokens is how many tokens MatMul handles with the fused form before
// dequantizing rows (which amortises over many tokens) becomes cheaper.
const qmvTokens = 4

// qmv computes out[t, r] for n <= qmvTokens tokens of a 4- or 8-bit matrix.
func qmv(out, x []float32, n int, m *Matrix) {
	q := m.Q
	groups := m.Cols / q.GroupSize
	xsum := make([]float32, n*groups)
	for t := 0; t < n; t++ {
		for g := 0; g < groups; g++ {
			var s float32
			for _, v := range x[t*m.Cols+g*q.GroupSize : t*m.Cols+(g+1)*q.GroupSize] {
				s += v
			}
			xsum[t*groups+g] = s
		}
	}
	words := m.Cols * q.Bits / 32
	perGroup := q.GroupSize * q.Bits / 32
	parallelFor(m.Rows, m.Cols*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			w := q.W[r*words : (r+1)*words]
			for t := 0; t < n; t++ {
				xt := x[t*m.Cols : (t+1)*m.Cols]
				var acc float32
				for g := 0; g < groups; g++ {
					s, b := q.scale(r*groups + g)
					wg := w[g*perGroup : (g+1)*perGroup]
					xg := xt[g*q.GroupSize : (g+1)*q.GroupSize]
					var dot, c float32
					if q.Bits == 4 {
						dot, c = dot4(wg, xg), 8
					} else {
						dot, c = dot8(wg, xg), 128
					}
					acc += s*dot + (b+c*s)*xsum[t*groups+g]
				}
				out[t*m.Rows+r] = acc
			}
		}
	})
}

// dot4 is Σ (q_j-8) x_j over 4-bit values packed eight to a word.
func dot4(w []uint32, x []float32) float32 {
	var s0, s1 float32
	x = x[:len(w)*8]
	for i, v := range w {
		xs := x[i*8 : i*8+8 : i*8+8]
		s0 += c4(v)*xs[0] + c4(v>>4)*xs[1] + c4(v>>8)*xs[2] + c4(v>>12)*xs[3]
		s1 += c4(v>>16)*xs[4] + c4(v>>20)*xs[5] + c4(v>>24)*xs[6] + c4(v>>28)*xs[7]
	}
	return s0 + s1
}

func c4(v uint32) float32 { return float32(int32(v&15) - 8) }

// dot8 is Σ (q_j-128) x_j over 8-bit values packed four to a word.
func dot8(w []uint32, x []float32) float32 {
	var s0, s1 float32
	x = x[:len(w)*4]
	for i, v := range w {
		xs := x[i*4 : i*4+4 : i*4+4]
		s0 += c8(v)*xs[0] + c8(v>>8)*xs[1]
		s1 += c8(v>>16)*xs[2] + c8(v>>24)*xs[3]
	}
	return s0 + s1
}

func c8(v uint32) float32 { return float32(int32(v&255) - 128) }
