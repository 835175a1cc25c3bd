package mslharness

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// slotParts mirrors SlotParts in quantized.metal.
type slotParts struct{ Stride, W, Scales, Biases uint32 }

// expertPool is a layer's slot pool exactly as the pager lays it out: the
// layout comes from experts.NewLayerLayout over the nine parts of an MLX
// SwiGLU expert (gate, up, down: weight, scales, biases each), and slot s
// holds expert slotExpert[s]'s bytes at the layout's part offsets.
type expertPool struct {
	layout         experts.LayerLayout
	pool           []byte
	gate, up, down []*kernels.Matrix // per expert
}

func newExpertPool(t *testing.T, r *rand.Rand, nexperts, nslots, inter, hidden, bits, group int, f16 bool, slotExpert []int) *expertPool {
	t.Helper()
	p := &expertPool{}
	var spec experts.LayerSpec
	parts := make([][][]byte, nexperts)
	for e := range nexperts {
		g := randQuant(r, inter, hidden, bits, group, f16)
		u := randQuant(r, inter, hidden, bits, group, f16)
		d := randQuant(r, hidden, inter, bits, group, f16)
		p.gate, p.up, p.down = append(p.gate, g), append(p.up, u), append(p.down, d)
		var ext []experts.Extent
		for _, m := range []*kernels.Matrix{g, u, d} {
			w, s, b := quantBuffers(m)
			for _, part := range [][]byte{w, s, b} {
				ext = append(ext, experts.Extent{File: "experts.safetensors", Offset: 0, Length: int64(len(part))})
				parts[e] = append(parts[e], part)
			}
		}
		spec.Experts = append(spec.Experts, ext)
	}
	layout, err := experts.NewLayerLayout(0, spec)
	if err != nil {
		t.Fatal(err)
	}
	p.layout = layout
	// Fill every byte first, so that a kernel reading padding or a wrong
	// slot gets garbage rather than zeros.
	p.pool = make([]byte, int64(nslots)*layout.SlotStride)
	for i := range p.pool {
		p.pool[i] = byte(r.Uint32())
	}
	for s, e := range slotExpert {
		for i, part := range parts[e] {
			copy(p.pool[int64(s)*layout.SlotStride+layout.PartOffsets[i]:], part)
		}
	}
	return p
}

// parts returns the SlotParts of matrix m (0 gate, 1 up, 2 down).
func (p *expertPool) parts(m int) []byte {
	o := p.layout.PartOffsets
	return params(slotParts{uint32(p.layout.SlotStride), uint32(o[3*m]), uint32(o[3*m+1]), uint32(o[3*m+2])})
}

func TestGatherQMVSlots(t *testing.T) {
	t.Parallel()
	prog := program(t, "quantized.metal")
	r := newRand(21)
	const nexperts, nslots, n, topk = 7, 4, 2, 3
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				inter, hidden := group, 2*group
				// Experts 5, 2, 6, 0 are resident in slots 0..3; the rest
				// are missing (-1), and the routing uses one of them.
				slotExpert := []int{5, 2, 6, 0}
				pool := newExpertPool(t, r, nexperts, nslots, inter, hidden, bits, group, f16, slotExpert)
				table := make([]int32, nexperts)
				for e := range table {
					table[e] = -1
				}
				for s, e := range slotExpert {
					table[e] = int32(s)
				}
				ids := []int32{2, 4, 0, 6, 5, 2}
				pairs := n * topk
				suffix := fmt.Sprintf("_b%d_g%d_%s", bits, group, scaleName(f16))

				x := randn(r, n*hidden, 1)
				want := make([]float32, pairs*inter)
				for k, e := range ids {
					if table[e] < 0 {
						continue
					}
					g, u := make([]float32, inter), make([]float32, inter)
					xk := x[(k/topk)*hidden : (k/topk+1)*hidden]
					kernels.MatMul(g, xk, 1, pool.gate[e])
					kernels.MatMul(u, xk, 1, pool.up[e])
					kernels.SwiGLU(want[k*inter:(k+1)*inter], g, u)
				}
				swiglu := func(gate, up []byte) []float32 {
					name := "gather_qmv_swiglu_slots" + suffix
					out := launch(t, prog, name, qmvLaunch(inter, pairs, map[int][]byte{
						0: pool.pool, 1: f32Bytes(x), 2: f32Bytes(make([]float32, pairs*inter)),
						3: i32Bytes(ids), 4: i32Bytes(table),
						5: params(gatherParams{uint32(inter), uint32(hidden), topk}), 6: gate, 7: up,
					}))
					return bytesF32(out[2])
				}
				compare(t, "gather_qmv_swiglu_slots"+suffix, swiglu(pool.parts(0), pool.parts(1)), want, 1e-6, 2e-5)
				if bits == 4 && group == 64 && !f16 {
					// Planted error: gate and up swapped must be caught.
					if _, bad, _ := mismatches(swiglu(pool.parts(1), pool.parts(0)), want, 1e-6, 2e-5); bad == 0 {
						t.Error("gather_qmv_swiglu_slots with gate and up swapped matched the reference")
					}
				}

				// Down projection: one input per pair.
				h := randn(r, pairs*inter, 1)
				want = make([]float32, pairs*hidden)
				for k, e := range ids {
					if table[e] >= 0 {
						kernels.MatMul(want[k*hidden:(k+1)*hidden], h[k*inter:(k+1)*inter], 1, pool.down[e])
					}
				}
				down := func(parts []byte) []float32 {
					name := "gather_qmv_slots" + suffix
					out := launch(t, prog, name, qmvLaunch(hidden, pairs, map[int][]byte{
						0: pool.pool, 1: f32Bytes(h), 2: f32Bytes(make([]float32, pairs*hidden)),
						3: i32Bytes(ids), 4: i32Bytes(table),
						5: params(gatherParams{uint32(hidden), uint32(inter), 1}), 6: parts,
					}))
					return bytesF32(out[2])
				}
				compare(t, "gather_qmv_slots"+suffix, down(pool.parts(2)), want, 1e-6, 2e-5)
				if bits == 8 && group == 32 && f16 {
					// Planted error: a stride of one page too few reads the
					// wrong bytes for every slot but the first.
					o := pool.layout.PartOffsets
					wrong := params(slotParts{uint32(pool.layout.SlotStride - experts.SlotAlign), uint32(o[6]), uint32(o[7]), uint32(o[8])})
					if pool.layout.SlotStride > experts.SlotAlign {
						if _, bad, _ := mismatches(down(wrong), want, 1e-6, 2e-5); bad == 0 {
							t.Error("gather_qmv_slots with a wrong slot stride matched the reference")
						}
					}
				}
			}
		}
	}
}
