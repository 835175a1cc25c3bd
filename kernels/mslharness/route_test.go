package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type routeParams struct {
	Experts, TopK, Sigmoid, HasBias, Groups, TopKGroups, Normalize uint32
	Scale                                                          float32
}

func b32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func TestSoftmaxRows(t *testing.T) {
	t.Parallel()
	p := program(t, "route.metal")
	r := newRand(7)
	for _, n := range []int{1, 31, 512, 1000} {
		rows := 3
		x := randn(r, rows*n, 4)
		want := append([]float32(nil), x...)
		for i := range rows {
			kernels.Softmax(want[i*n : (i+1)*n])
		}
		out := launch(t, p, "softmax_rows", Launch{Groups: [3]int{rows, 1, 1}, Threads: [3]int{256, 1, 1},
			Buffers: map[int][]byte{0: f32Bytes(x), 1: u32Bytes([]uint32{uint32(n)})}, Seed: uint64(n)})
		compare(t, "softmax_rows", bytesF32(out[0]), want, 1e-7, 1e-5)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	p := program(t, "route.metal")
	r := newRand(8)
	for _, c := range []struct {
		name    string
		experts int
		routing kernels.Routing
		bias    bool
	}{
		{"qwen3-next softmax top-10 of 512", 512, kernels.Routing{TopK: 10, Normalize: true, Scale: 1}, false},
		{"mixtral softmax top-2 of 8", 8, kernels.Routing{TopK: 2, Normalize: true, Scale: 1}, false},
		{"olmoe unnormalised top-8 of 64", 64, kernels.Routing{TopK: 8, Scale: 1}, false},
		{"deepseek-v3 sigmoid grouped", 256, kernels.Routing{TopK: 8, Sigmoid: true, Groups: 8, TopKGroups: 4, Normalize: true, Scale: 2.5}, true},
		{"glm4 sigmoid ungrouped", 160, kernels.Routing{TopK: 8, Sigmoid: true, Normalize: true, Scale: 1.8}, true},
		{"ragged experts, ties", 37, kernels.Routing{TopK: 5, Normalize: true, Scale: 1}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tokens := 4
			logits := randn(r, tokens*c.experts, 2)
			if c.experts == 37 {
				for i := range logits[:c.experts] {
					logits[i] = float32(i % 3) // many exact ties
				}
			}
			routing := c.routing
			bias := make([]float32, c.experts)
			if c.bias {
				bias = randn(r, c.experts, 0.5)
				routing.CorrectionBias = bias
			}
			wantIDs := make([]int32, tokens*routing.TopK)
			wantW := make([]float32, tokens*routing.TopK)
			for i := range tokens {
				kernels.Route(logits[i*c.experts:(i+1)*c.experts], &routing,
					wantIDs[i*routing.TopK:(i+1)*routing.TopK], wantW[i*routing.TopK:(i+1)*routing.TopK], nil)
			}
			prm := routeParams{uint32(c.experts), uint32(routing.TopK), b32(routing.Sigmoid), b32(c.bias),
				uint32(max(routing.Groups, 1)), uint32(routing.TopKGroups), b32(routing.Normalize), routing.Scale}
			out := launch(t, p, "route", Launch{Groups: [3]int{tokens, 1, 1}, Threads: [3]int{256, 1, 1},
				Buffers: map[int][]byte{
					0: f32Bytes(logits), 1: f32Bytes(bias), 2: i32Bytes(make([]int32, len(wantIDs))), 3: f32Bytes(make([]float32, len(wantW))),
					4: params(prm),
				}})
			gotIDs := bytesI32(out[2])
			for i := range wantIDs {
				if gotIDs[i] != wantIDs[i] {
					t.Fatalf("route: ids %v, want %v", gotIDs, wantIDs)
				}
			}
			compare(t, "route", bytesF32(out[3]), wantW, 1e-7, 1e-5)
		})
	}
}
