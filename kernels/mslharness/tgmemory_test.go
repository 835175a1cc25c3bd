package mslharness

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// clangOnly skips a test of the checks that need clang's build.
func clangOnly(t *testing.T) {
	t.Helper()
	cxx, err := Compiler()
	if err != nil {
		t.Skip(err)
	}
	if !isClang(cxx) {
		t.Skipf("the threadgroup-memory checks need clang, have %s", cxx)
	}
}

// Each kernel's threadgroup variables are attributed to it: qmm's three
// 32x32 float tiles, the planted RMS kernels' 8 partial sums.
func TestThreadgroupBytes(t *testing.T) {
	t.Parallel()
	clangOnly(t)
	for file, want := range map[string]map[string]int{
		"quantized.metal":                 {"qmm_b4_g64_bf16": 3 * 32 * 32 * 4, "qmv_b4_g64_bf16": 0},
		"testdata/planted.metal":          {"rms_wrong_math": 8 * 4, "rms_missing_barrier": 8 * 4},
		"testdata/simdgroup_matrix.metal": {"mma_tiles": 256 * 4, "mma_transposed": 0},
	} {
		p := program(t, file)
		for k, n := range want {
			if got := p.Kernels[k].ThreadgroupBytes; got != n {
				t.Errorf("%s: %s has %d bytes of threadgroup memory, want %d", file, k, got, n)
			}
		}
	}
}

// Build rejects what Metal rejects: more than 32 KiB of threadgroup
// memory in a kernel, and a threadgroup variable outside a kernel.
func TestPlantedThreadgroupErrors(t *testing.T) {
	t.Parallel()
	clangOnly(t)
	for file, msg := range map[string]string{
		"testdata/tg_too_large.metal":      "declares 32800 bytes of threadgroup memory; Metal allows 32768",
		"testdata/tg_outside_kernel.metal": "threadgroup variable scratch is declared in stage",
	} {
		_, err := Build(file, filepath.Join(mslDir, "compat"), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: Build: %v, want an error containing %q", file, err, msg)
		} else {
			t.Logf("caught: %v", err)
		}
	}
}

// Two threadgroups are in flight at once, so a kernel that relies on one
// finishing before the next starts gives a different result than it would
// one threadgroup at a time.
func TestPlantedCrossGroupOrder(t *testing.T) {
	t.Parallel()
	p := program(t, "testdata/planted.metal")
	out, err := p.Run("cross_group_order", Launch{Groups: [3]int{2, 1, 1}, Threads: [3]int{64, 1, 1}, Seed: 3,
		Buffers: map[int][]byte{0: make([]byte, 8)}})
	if err != nil {
		t.Fatal(err)
	}
	got := math.Float32frombits(binary.LittleEndian.Uint32(out[0][4:]))
	if got == 43 {
		t.Fatalf("threadgroup 1 saw threadgroup 0's final write (out[1] = %g): threadgroups ran one after another", got)
	}
	t.Logf("caught: threadgroup 1 ran alongside threadgroup 0 (out[1] = %g, 43 one at a time)", got)
}

func TestEnclosingFunction(t *testing.T) {
	for _, c := range []struct{ demangled, fn, name string }{
		{"void qmm<4, 64, bfloat>(unsigned int const*, bfloat const*, metal::mem_flags)::xs", "qmm<4,64,bfloat>", "xs"},
		{"rms_wrong_math(float const*, float*, unsigned int const&, unsigned int)::part", "rms_wrong_math", "part"},
		{"void sdpa_q<8u>(float const*, unsigned int)::part_o", "sdpa_q<8>", "part_o"},
		{"shared_tile", "", "shared_tile"},
	} {
		fn, name, ok := enclosingFunction(c.demangled)
		if fn != c.fn || name != c.name || ok != (c.fn != "") {
			t.Errorf("enclosingFunction(%q) = %q, %q, %v; want %q, %q", c.demangled, fn, name, ok, c.fn, c.name)
		}
	}
}
