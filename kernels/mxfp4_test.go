package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// mxDecodeReference decodes element (r, c) of q straight from the format
// definitions (OCP microscaling: E2M1 = sign, 2 exponent bits with bias 1,
// 1 mantissa bit; E4M3 = sign, 4 exponent bits with bias 7, 3 mantissa
// bits; E8M0 = 2^(b-127)), in float64 and without the kernels' tables.
func mxDecodeReference(q *MXQuant, rows, cols, r, c int) float64 {
	var code, bits int
	if q.Mode == MXFP8 {
		code, bits = int(q.W[r*cols+c]), 8
	} else {
		b := q.W[(r*cols+c)/2]
		code, bits = int(b>>(4*(c%2)))&15, 4
	}
	minifloat := func(code, expBits, mantBits int) float64 {
		sign := 1.0
		if code>>(expBits+mantBits)&1 == 1 {
			sign = -1
		}
		e := code >> mantBits & (1<<expBits - 1)
		m := float64(code & (1<<mantBits - 1))
		bias := 1<<(expBits-1) - 1
		if e == 0 {
			return sign * m / float64(int(1)<<mantBits) * math.Pow(2, float64(1-bias))
		}
		return sign * (1 + m/float64(int(1)<<mantBits)) * math.Pow(2, float64(e-bias))
	}
	var v float64
	if bits == 8 {
		v = minifloat(code, 4, 3)
	} else {
		v = minifloat(code, 2, 1)
	}
	group := q.Mode.GroupSize()
	s := int(q.Scales[r*(cols/group)+c/group])
	if q.Mode == NVFP4 {
		return v * minifloat(s, 4, 3)
	}
	return v * math.Pow(2, float64(s-127))
}

// randomMX makes a [rows, cols] matrix of random codes and scales near 1
// (NaN codes of E4M3, 0x7f and 0xff, left out).
func randomMX(rng *rand.Rand, mode MXMode, rows, cols int) *Matrix {
	q := &MXQuant{Mode: mode, W: make([]byte, rows*cols*mode.Bits()/8), Scales: make([]byte, rows*cols/mode.GroupSize())}
	for i := range q.W {
		q.W[i] = byte(rng.IntN(256))
		if mode == MXFP8 && q.W[i]&0x7f == 0x7f {
			q.W[i] = 0x3c
		}
	}
	for i := range q.Scales {
		if mode == NVFP4 {
			q.Scales[i] = byte(0x30 + rng.IntN(16)) // E4M3 around 1
		} else {
			q.Scales[i] = byte(122 + rng.IntN(8))
		}
	}
	return &Matrix{Rows: rows, Cols: cols, MX: q}
}

func TestMXRowMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mode := range []MXMode{MXFP4, MXFP8, NVFP4} {
		m := randomMX(rng, mode, 5, 96)
		if err := m.Check(); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		row := make([]float32, m.Cols)
		for r := 0; r < m.Rows; r++ {
			m.Row(r, row)
			for c, v := range row {
				if want := mxDecodeReference(m.MX, m.Rows, m.Cols, r, c); float64(v) != want {
					t.Fatalf("%s: element (%d,%d) = %v, want %v", mode, r, c, v, want)
				}
			}
		}
		// A range that starts inside a byte and a group.
		part := make([]float32, 50)
		m.rowRange(2, 33, 83, part)
		for i, v := range part {
			if want := mxDecodeReference(m.MX, m.Rows, m.Cols, 2, 33+i); float64(v) != want {
				t.Fatalf("%s: rowRange element %d = %v, want %v", mode, 33+i, v, want)
			}
		}
	}
}

func TestMXMatMulMatchesReference(t *testing.T) {
	for _, p := range decodePaths() {
		if p.act != 0 {
			continue
		}
		t.Run(p.name, func(t *testing.T) { withFeatures(p, func() { checkMXMatMul(t) }) })
	}
}

// checkMXMatMul compares MatMul and MatVecRows of each mode with the
// float64 product of the decoded matrix.
func checkMXMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, mode := range []MXMode{MXFP4, MXFP8, NVFP4} {
		m := randomMX(rng, mode, 70, 160)
		// Decode (the fused kernel, n <= DecodeTokens) and prefill (GEMM).
		for _, n := range []int{1, 3, DecodeTokens, 9} {
			x := make([]float32, n*m.Cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			want, bound := qmvReference(x, n, m)
			out := make([]float32, n*m.Rows)
			MatMul(out, x, n, m)
			for i := range out {
				if d := math.Abs(float64(out[i]) - want[i]); d > bound[i] {
					t.Fatalf("%s n=%d: out[%d] = %v, want %v (|diff| %g > %g)", mode, n, i, out[i], want[i], d, bound[i])
				}
			}
			if n > DecodeTokens {
				continue
			}
			var d DecodeInput
			d.Prepare(x, n, m.Cols, nil)
			rows := make([]float32, n*m.Rows)
			MatVecRows(rows, &d, m, 10, 40)
			for tok := 0; tok < n; tok++ {
				for r := 10; r < 40; r++ {
					if rows[tok*m.Rows+r] != out[tok*m.Rows+r] {
						t.Fatalf("%s: MatVecRows row %d token %d = %v, MatMul %v", mode, r, tok, rows[tok*m.Rows+r], out[tok*m.Rows+r])
					}
				}
			}
		}
	}
}

func TestMXCheckNamesTheMismatch(t *testing.T) {
	m := &Matrix{Rows: 4, Cols: 64, MX: &MXQuant{Mode: MXFP4, W: make([]byte, 4*32), Scales: make([]byte, 7)}}
	if err := m.Check(); err == nil {
		t.Fatal("7 scales for 8 groups passed the check")
	}
	m = &Matrix{Rows: 4, Cols: 48, MX: &MXQuant{Mode: MXFP4, W: make([]byte, 4*24), Scales: make([]byte, 6)}}
	if err := m.Check(); err == nil {
		t.Fatal("48 columns in groups of 32 passed the check")
	}
	for _, s := range []string{"mxfp4", "mxfp8", "nvfp4"} {
		if mode, ok := ParseMXMode(s); !ok || mode.String() != s {
			t.Errorf("ParseMXMode(%q) = %v, %v", s, mode, ok)
		}
	}
	if _, ok := ParseMXMode("affine"); ok {
		t.Error("affine parsed as a microscaling mode")
	}
}

func TestMXMatMulAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m := randomMX(rng, MXFP4, 64, 64)
	x, out := make([]float32, 64), make([]float32, 64)
	MatMul(out, x, 1, m)
	if a := testing.AllocsPerRun(20, func() { MatMul(out, x, 1, m) }); a != 0 {
		t.Errorf("MXFP4 decode MatMul allocates %.1f times per call", a)
	}
}

// BenchmarkMXFP4MatVec: one token through a gpt-oss-sized MXFP4 expert
// matrix, with the AVX2 or NEON kernel (where the CPU has it) and the Go kernel,
// next to the 4-bit affine kernel (group 32) of the same shape, as weight
// bytes per second and as a fraction of the copy bandwidth measured in the
// same run.
func BenchmarkMXFP4MatVec(b *testing.B) {
	bw := copyBandwidth()
	rng := rand.New(rand.NewPCG(7, 8))
	mx := randomMX(rng, MXFP4, 2880, 2880)
	q4 := randomQuant(rng, 2880, 2880, 4, 32, false)
	x, out := randVec(rng, 2880), make([]float32, 2880)
	run := func(name string, m *Matrix, simd bool) {
		b.Run(name, func(b *testing.B) {
			withFeatures(decodePath{simd: simd}, func() {
				b.SetBytes(int64(m.Bytes()))
				for b.Loop() {
					MatMul(out, x, 1, m)
				}
			})
			b.ReportMetric(float64(m.Bytes())*float64(b.N)/b.Elapsed().Seconds()/bw, "frac-of-copy-bw")
		})
	}
	run("mxfp4-simd", mx, true)
	run("mxfp4-go", mx, false)
	run("q4g32-simd", q4, true)
}
