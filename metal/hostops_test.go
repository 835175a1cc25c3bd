package metal

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
)

// skipWithoutMetal reports whether a Metal test should skip after New
// returned err: only when Metal is not available. A shader Apple's
// compiler rejects, a pipeline it cannot build, or any other error of New
// fails the test instead (metal_darwin_test.go's newMetal).
func skipWithoutMetal(err error) bool { return errors.Is(err, ErrNotAvailable) }

// hostOnly reports whether an op name of HostOps is one no kernel covers,
// so that running it on the host is by design: dense (f32 or bf16) weights
// and Zero (a clear of shared memory).
func hostOnly(op string) bool {
	return op == "Zero" || strings.HasSuffix(op, " f32") || strings.HasSuffix(op, " bf16")
}

// unexpectedHostOps lists the ops of ops that have a kernel and still ran
// on the host, sorted.
func unexpectedHostOps(ops map[string]int) []string {
	var bad []string
	for op, n := range ops {
		if !hostOnly(op) {
			bad = append(bad, fmt.Sprintf("%s (%d)", op, n))
		}
	}
	slices.Sort(bad)
	return bad
}

// checkHostOps fails the test when e (if it is a Metal executor) ran an op
// that has a kernel on the host: a kernel that silently stopped being used
// would otherwise still match the CPU executor.
func checkHostOps(t *testing.T, e graph.Executor) {
	t.Helper()
	me, ok := e.(*Executor)
	if !ok {
		return
	}
	if bad := unexpectedHostOps(me.HostOps()); len(bad) > 0 {
		t.Errorf("ops with a kernel ran on the host: %s", strings.Join(bad, ", "))
	}
}

func TestUnexpectedHostOps(t *testing.T) {
	ops := map[string]int{"MatMul bf16": 3, "Embed f32": 1, "Zero": 2, "Route": 1, "MatMul q4/g64": 2}
	got := unexpectedHostOps(ops)
	if want := []string{"MatMul q4/g64 (2)", "Route (1)"}; !slices.Equal(got, want) {
		t.Fatalf("unexpectedHostOps(%v) = %v, want %v", ops, got, want)
	}
}

// TestSkipOnlyWhenMetalIsNotAvailable checks the skip rule of the Metal
// tests on the errors New can return.
func TestSkipOnlyWhenMetalIsNotAvailable(t *testing.T) {
	var ps pipelines[int]
	ps.build = func(string) (int, bool, error) { return 0, true, errors.New("Compiler encountered an internal error") }
	_, pipeErr := ps.pipeline("qmv_b4_g64_bf16")
	for _, c := range []struct {
		err  error
		skip bool
	}{
		{notAvailableError("no Metal device found"), true},
		{fmt.Errorf("metal: %w", notAvailableError("AMD Radeon is not an Apple7-family GPU")), true},
		{errors.New("metal: compiling kernels/msl/quantized.metal: use of undeclared identifier 'bfloat'"), false},
		{pipeErr, false},
		{errors.New("Metal is not available"), false}, // text alone does not count: the error must wrap ErrNotAvailable
	} {
		if got := skipWithoutMetal(c.err); got != c.skip {
			t.Errorf("skipWithoutMetal(%q) = %v, want %v", c.err, got, c.skip)
		}
	}
	if _, err := New(); err != nil && !skipWithoutMetal(err) {
		t.Errorf("New() = %v: an error that does not wrap ErrNotAvailable must fail the Metal tests", err)
	}
}
