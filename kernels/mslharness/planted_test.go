package mslharness

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestPlantedErrorsAreCaught runs the deliberately wrong kernels of
// testdata/planted.metal and checks that each is caught: by comparison with
// the Go reference (wrong math, a missing barrier, a read of threadgroup
// memory nobody wrote) or by the runner (an out-of-bounds read faults, a
// barrier that not every thread reaches deadlocks).
func TestPlantedErrorsAreCaught(t *testing.T) {
	t.Parallel()
	p := program(t, "testdata/planted.metal")
	r := newRand(13)
	rows, dim := 6, 1024 // dim*4 bytes is a whole number of 16-byte units, so x ends at the guard page
	x := randn(r, rows*dim, 1)
	want := make([]float32, rows*dim)
	kernels.RMSNorm(want, x, nil, rows, dim, 1e-6)
	l := Launch{Groups: [3]int{rows, 1, 1}, Threads: [3]int{256, 1, 1}, Seed: 99, Buffers: map[int][]byte{
		0: f32Bytes(x), 1: f32Bytes(make([]float32, rows*dim)), 2: u32Bytes([]uint32{uint32(dim)}),
	}}
	half := l
	half.Threads = [3]int{128, 1, 1}
	for kernel, l := range map[string]Launch{"rms_wrong_math": l, "rms_missing_barrier": l, "rms_uninitialized": half} {
		out, err := p.Run(kernel, l)
		if err != nil {
			t.Fatalf("%s: %v", kernel, err)
		}
		worst, bad, _ := mismatches(bytesF32(out[1]), want, 0, 2e-6)
		if bad == 0 {
			t.Errorf("%s: output matches the reference (max abs error %.3g); the planted bug was not caught", kernel, worst)
		} else {
			t.Logf("%s caught: %d of %d values wrong, max abs error %.3g", kernel, bad, rows*dim, worst)
		}
	}
	for kernel, msg := range map[string]string{
		"rms_out_of_bounds":     "out-of-bounds",
		"rms_divergent_barrier": "deadlock",
	} {
		_, err := p.Run(kernel, l)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one about %q", kernel, err, msg)
		} else {
			t.Logf("%s caught: %v", kernel, err)
		}
	}
}

// A shader that mixes up Metal address spaces is rejected by Build (with
// clang, which has address spaces in C++), as the Metal compiler would.
func TestPlantedAddressSpaceError(t *testing.T) {
	t.Parallel()
	cxx, err := Compiler()
	if err != nil {
		t.Skip(err)
	}
	if !strings.Contains(filepath.Base(cxx), "clang") {
		t.Skipf("the address-space check needs clang, have %s", cxx)
	}
	_, err = Build("testdata/address_space.metal", filepath.Join(mslDir, "compat"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "address-space check") {
		t.Fatalf("Build: %v, want an address-space check error", err)
	}
	t.Logf("caught: %.300s", err)
}
