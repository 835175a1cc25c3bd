package mslharness

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRunnerSurvivesFailedLaunches: runner processes serve launch after
// launch, so a launch must not see anything of the ones before it, and a
// launch that faults, deadlocks or hangs must fail alone: the next launch
// gets a working runner and the same result as before.
// Not parallel: it shortens Timeout while the endless launch runs.
func TestRunnerSurvivesFailedLaunches(t *testing.T) {
	p := program(t, "testdata/planted.metal")
	r := newRand(21)
	rows, dim := 3, 1024
	l := Launch{Groups: [3]int{rows, 1, 1}, Threads: [3]int{256, 1, 1}, Buffers: map[int][]byte{
		0: f32Bytes(randn(r, rows*dim, 1)), 1: f32Bytes(make([]float32, rows*dim)), 2: u32Bytes([]uint32{uint32(dim)}),
	}}
	// With seed 0 (the fixed thread order) a racy kernel gives the same
	// wrong result in every launch, whatever ran in the process before.
	first := launch(t, p, "rms_missing_barrier", l)[1]

	saved := Timeout
	defer func() { Timeout = saved }()
	spin := Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{4, 1, 1}, Buffers: map[int][]byte{0: make([]byte, 16)}}
	for kernel, msg := range map[string]string{
		"rms_out_of_bounds":     "out-of-bounds",
		"rms_divergent_barrier": "deadlock",
		"spin_forever":          "killed",
	} {
		ll := l
		if kernel == "spin_forever" {
			// Only the launch that never ends waits for the timeout; the
			// others (and the fresh runner after it) keep the default, which
			// a loaded machine needs.
			ll, Timeout = spin, 5*time.Second
		}
		_, err := p.Run(kernel, ll)
		Timeout = saved
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one about %q", kernel, err, msg)
		}
		got := launch(t, p, "rms_missing_barrier", l)[1]
		if !bytes.Equal(got, first) {
			t.Fatalf("after the failed %s, a launch gave a different result", kernel)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got := launch(t, p, "rms_missing_barrier", l)[1]; !bytes.Equal(got, first) {
		t.Errorf("after Close, a launch gave a different result")
	}
}
