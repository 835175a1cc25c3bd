package mslharness

import (
	"strings"
	"testing"
)

// matMul returns a b + c for row-major a [m,k], b [k,n], c [m,n] (nil: 0),
// accumulating in float32 in the order the harness does.
func matMul(a, b, c []float32, m, k, n int) []float32 {
	out := make([]float32, m*n)
	for i := range m {
		for j := range n {
			var s float32
			if c != nil {
				s = c[i*n+j]
			}
			for l := range k {
				s += a[i*k+l] * b[l*n+j]
			}
			out[i*n+j] = s
		}
	}
	return out
}

func transpose(a []float32, rows, cols int) []float32 {
	t := make([]float32, len(a))
	for r := range rows {
		for c := range cols {
			t[c*rows+r] = a[r*cols+c]
		}
	}
	return t
}

// The harness's simdgroup_matrix follows Metal's semantics: tiles loaded
// from threadgroup and device memory with a row stride and an origin,
// transposed loads, the diagonal value constructor, filled matrices,
// multiply and multiply-accumulate, strided stores.
func TestSimdgroupMatrix(t *testing.T) {
	t.Parallel()
	p := program(t, "testdata/simdgroup_matrix.metal")
	r := newRand(31)
	a, b, c := randn(r, 256, 1), randn(r, 256, 1), randn(r, 256, 1)
	out := launch(t, p, "mma_tiles", Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{128, 1, 1}, Seed: 5,
		Buffers: map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: f32Bytes(c), 3: f32Bytes(make([]float32, 256))}})
	compare(t, "mma_tiles", bytesF32(out[3]), matMul(a, b, c, 16, 16, 16), 1e-5, 0)

	a8, b8 := randn(r, 64, 1), randn(r, 64, 1)
	want := matMul(a8, b8, nil, 8, 8, 8)
	for i := range want {
		want[i] -= 0.125
		if i%9 == 0 {
			want[i] += 4
		}
	}
	out = launch(t, p, "mma_transposed", Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{32, 1, 1}, Seed: 6,
		Buffers: map[int][]byte{0: f32Bytes(a8), 1: f32Bytes(transpose(b8, 8, 8)), 2: f32Bytes(make([]float32, 64))}})
	compare(t, "mma_transposed", bytesF32(out[2]), want, 1e-5, 0)
}

// Misusing a simdgroup_matrix is caught: a collective that not every lane
// reaches deadlocks, lane-dependent addresses are reported, and a load of
// threadgroup memory that other lanes have not finished writing reads
// Metal's undefined (here NaN) contents.
func TestSimdgroupMatrixPlanted(t *testing.T) {
	t.Parallel()
	p := program(t, "testdata/simdgroup_matrix.metal")
	r := newRand(32)
	a, b := randn(r, 64, 1), randn(r, 64, 1)
	l := Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{32, 1, 1}, Seed: 7,
		Buffers: map[int][]byte{0: f32Bytes(a), 1: f32Bytes(transpose(b, 8, 8)), 2: f32Bytes(make([]float32, 64))}}
	// mma_lane_pointer's odd lanes read one element further.
	wide := l
	wide.Buffers = map[int][]byte{0: f32Bytes(append(a, 0)), 1: l.Buffers[1], 2: l.Buffers[2]}
	for kernel, msg := range map[string]string{
		"mma_divergent":    "deadlock",
		"mma_lane_pointer": "different addresses",
	} {
		kl := l
		if kernel == "mma_lane_pointer" {
			kl = wide
		}
		_, err := p.Run(kernel, kl)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one about %q", kernel, err, msg)
		} else {
			t.Logf("%s caught: %v", kernel, err)
		}
	}
	out, err := p.Run("mma_missing_barrier", l)
	if err != nil {
		t.Fatal(err)
	}
	worst, bad, _ := mismatches(bytesF32(out[2]), matMul(a, b, nil, 8, 8, 8), 1e-5, 0)
	if bad == 0 {
		t.Errorf("mma_missing_barrier: output matches the reference (max abs error %.3g); the planted bug was not caught", worst)
	} else {
		t.Logf("mma_missing_barrier caught: %d of 64 values wrong", bad)
	}
}
