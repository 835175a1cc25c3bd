package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// codes unpacks row r of a quantized matrix.
func codes(m *Matrix, r int) []uint32 {
	q := m.Q
	words := q.W[r*m.Cols*q.Bits/32:]
	out := make([]uint32, m.Cols)
	for j := range out {
		bit := j * q.Bits
		v := words[bit/32] >> (bit % 32)
		if bit%32+q.Bits > 32 {
			v |= words[bit/32+1] << (32 - bit%32)
		}
		out[j] = v & (1<<q.Bits - 1)
	}
	return out
}

func TestQuantizeHandExamples(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first      []float32 // the group starts with these
		filler     float32   // and the rest of it is this
		scale      float32   // before bf16 rounding
		bias       float32
		firstCodes []uint32
		fillerCode uint32
	}{
		// |min| dominates: positive scale, bias at the minimum, q0 = round(-1.5/(2/15)) = -11.
		{"min edge", []float32{-1.5, 0.5}, 0, float32(-1.5) / -11, -1.5, []uint32{0, 15}, 11},
		// |max| dominates: the scale is negative and the bias is the maximum.
		{"max edge", []float32{1.5, -0.5}, 0, float32(1.5) / -11, 1.5, []uint32{0, 15}, 11},
		// No positive value: the maximum is taken as zero (MLX's GPU kernels),
		// so the range is [-1.2, 0]: scale 1.2/15 = 0.08, q0 = -15;
		// -0.5 is 0.7/0.08 = 8.75 steps up, -0.3 is 11.25.
		{"all negative", []float32{-1.2, -0.5}, -0.3, float32(-1.2) / -15, -1.2, []uint32{0, 9}, 11},
	} {
		w := make([]float32, 32)
		for i := range w {
			w[i] = tc.filler
		}
		copy(w, tc.first)
		m, err := Quantize(w, 1, 32, 4, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Q.Scales[0], F32ToBF16(tc.scale); got != want {
			t.Errorf("%s: scale %g, want %g", tc.name, BF16ToF32(got), BF16ToF32(want))
		}
		if got, want := m.Q.Biases[0], F32ToBF16(tc.bias); got != want {
			t.Errorf("%s: bias %g, want %g", tc.name, BF16ToF32(got), BF16ToF32(want))
		}
		c := codes(m, 0)
		if !slices.Equal(c[:len(tc.firstCodes)], tc.firstCodes) {
			t.Errorf("%s: codes %v, want %v", tc.name, c[:len(tc.firstCodes)], tc.firstCodes)
		}
		if c[5] != tc.fillerCode {
			t.Errorf("%s: code of the filler value %d, want %d", tc.name, c[5], tc.fillerCode)
		}
	}
}

// TestQuantizeExactOnGrid quantizes values that lie exactly on a grid the
// algorithm must find, for every bit width and group size: the codes, scale
// and bias come back exactly, which pins the bit packing of each width.
func TestQuantizeExactOnGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, gs := range []int{32, 64, 128} {
			for _, negScale := range []bool{false, true} {
				rows, cols := 3, 2*gs
				nBins := 1<<bits - 1
				w := make([]float32, rows*cols)
				want := make([][]uint32, rows)
				for r := range rows {
					want[r] = make([]uint32, cols)
					for g := 0; g < cols/gs; g++ {
						s := float32(math.Ldexp(1, -3-rng.IntN(4)))
						// The edge value is k steps from zero, more than half the range.
						k := nBins/2 + 1 + rng.IntN(nBins-nBins/2)
						b := -float32(k) * s
						if negScale {
							s, b = -s, -b
						}
						for j := range gs {
							c := rng.IntN(nBins + 1)
							switch j {
							case 0:
								c = 0
							case 1:
								c = nBins
							}
							want[r][g*gs+j] = uint32(c)
							w[r*cols+g*gs+j] = s*float32(c) + b
						}
					}
				}
				m, err := Quantize(w, rows, cols, bits, gs)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Check(); err != nil {
					t.Fatalf("%d-bit g%d: %v", bits, gs, err)
				}
				row := make([]float32, cols)
				for r := range rows {
					if got := codes(m, r); !slices.Equal(got, want[r]) {
						t.Fatalf("%d-bit g%d neg=%v row %d: codes differ", bits, gs, negScale, r)
					}
					m.Row(r, row)
					if !slices.Equal(row, w[r*cols:(r+1)*cols]) {
						t.Fatalf("%d-bit g%d neg=%v row %d: dequantized values differ from the grid", bits, gs, negScale, r)
					}
				}
				again, _ := Quantize(w, rows, cols, bits, gs)
				if !slices.Equal(again.Q.W, m.Q.W) {
					t.Errorf("%d-bit g%d: quantizing twice differs", bits, gs)
				}
			}
		}
	}
}

// TestQuantizeErrorBound checks random weights come back within half a step
// plus the bf16 rounding of the stored scale and bias, and that each
// group's largest-magnitude value (the edge) is kept to bf16 precision.
// Moving the scale so zero lands on a code can leave the far end of the
// range up to one step outside the codes; values there are clamped and may
// be off by up to a step and a half.
func TestQuantizeErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, gs := range []int{32, 64, 128} {
			rows, cols := 4, 256
			w := make([]float32, rows*cols)
			for i := range w {
				w[i] = float32(rng.NormFloat64()) * 0.05
			}
			m, err := Quantize(w, rows, cols, bits, gs)
			if err != nil {
				t.Fatal(err)
			}
			nBins := float64(int(1)<<bits - 1)
			row := make([]float32, cols)
			for r := range rows {
				m.Row(r, row)
				for g := 0; g < cols/gs; g++ {
					gi := r*cols/gs + g
					s := math.Abs(float64(BF16ToF32(m.Q.Scales[gi])))
					b := math.Abs(float64(BF16ToF32(m.Q.Biases[gi])))
					slack := s*nBins/256 + b/256 + 1e-7
					sv, bv := float64(BF16ToF32(m.Q.Scales[gi])), float64(BF16ToF32(m.Q.Biases[gi]))
					lo, hi := min(bv, bv+nBins*sv), max(bv, bv+nBins*sv)
					edge := 0
					for j := g * gs; j < (g+1)*gs; j++ {
						x := w[r*cols+j]
						bound := s/2 + slack
						if float64(x) < lo-slack || float64(x) > hi+slack {
							bound += s
						}
						if d := math.Abs(float64(row[j] - x)); d > bound {
							t.Fatalf("%d-bit g%d: element (%d,%d) = %g comes back as %g (bound %g)", bits, gs, r, j, x, row[j], bound)
						}
						if math.Abs(float64(x)) > math.Abs(float64(w[r*cols+edge])) || j == g*gs {
							edge = j
						}
					}
					x := float64(w[r*cols+edge])
					if d := math.Abs(float64(row[edge]) - x); d > math.Abs(x)/256 {
						t.Errorf("%d-bit g%d: edge value %g comes back as %g", bits, gs, x, row[edge])
					}
				}
			}
		}
	}
}

func TestQuantizeRejectsBadShapes(t *testing.T) {
	w := make([]float32, 64)
	for _, tc := range []struct {
		name                 string
		w                    []float32
		rows, cols, bits, gs int
	}{
		{"7 bits", w, 1, 64, 7, 32},
		{"group 16", w, 1, 64, 4, 16},
		{"cols not a multiple of the group", w, 2, 32, 4, 64},
		{"length mismatch", w[:40], 1, 64, 4, 32},
		{"no rows", nil, 0, 64, 4, 32},
	} {
		if _, err := Quantize(tc.w, tc.rows, tc.cols, tc.bits, tc.gs); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestF32ToBF16(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{1 + 1.0/256, 0x3f80},             // tie, rounds to the even 0x3f80
		{1 + 3.0/256, 0x3f82},             // tie, rounds to the even 0x3f82
		{1 + 1.0/256 + 1.0/65536, 0x3f81}, // above the tie
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // rounds up to infinity
		{0, 0},
	} {
		if got := F32ToBF16(tc.f); got != tc.want {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	if nan := BF16ToF32(F32ToBF16(float32(math.NaN()))); nan == nan {
		t.Errorf("NaN converts to %g", nan)
	}
}
