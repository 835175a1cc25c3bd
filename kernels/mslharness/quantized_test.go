package mslharness

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type qmvParams struct{ Rows, Cols uint32 }

type gatherParams struct{ Rows, Cols, XGroup uint32 }

func scaleName(f16 bool) string {
	if f16 {
		return "f16"
	}
	return "bf16"
}

// quantBuffers returns the weight, scales and biases buffers of m.
func quantBuffers(m *kernels.Matrix) (w, s, b []byte) {
	return u32Bytes(m.Q.W), u16Bytes(m.Q.Scales), u16Bytes(m.Q.Biases)
}

// qmvLaunch is the launch shape documented in quantized.metal.
func qmvLaunch(rows, n int, bufs map[int][]byte) Launch {
	return Launch{Groups: [3]int{(rows + 7) / 8, n, 1}, Threads: [3]int{64, 1, 1}, Buffers: bufs, Seed: uint64(rows*31 + n)}
}

func TestQMV(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	r := newRand(2)
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				// Ragged rows (not a multiple of 8) and columns that are not a
				// multiple of a full SIMD-group step.
				rows, cols, n := 37, 5*group, 2
				checkProduct(t, p, r, "qmv", qmvLaunch, params(qmvParams{uint32(rows), uint32(cols)}), rows, cols, n, bits, group, f16)
			}
		}
	}
}

// checkProduct runs kernel ("qmv" or "qmm") in the given format on a random
// [rows, cols] matrix and n random inputs, launched by shape with the
// parameter block prm, and compares y [n, rows] with kernels.MatMul.
func checkProduct(t *testing.T, p *Program, r *rand.Rand, kernel string, shape func(rows, n int, bufs map[int][]byte) Launch,
	prm []byte, rows, cols, n, bits, group int, f16 bool) {
	t.Helper()
	m := randQuant(r, rows, cols, bits, group, f16)
	x := randn(r, n*cols, 1)
	want := make([]float32, n*rows)
	kernels.MatMul(want, x, n, m)
	w, s, b := quantBuffers(m)
	name := fmt.Sprintf("%s_b%d_g%d_%s", kernel, bits, group, scaleName(f16))
	out := launch(t, p, name, shape(rows, n, map[int][]byte{
		0: w, 1: s, 2: b, 3: f32Bytes(x), 4: f32Bytes(make([]float32, n*rows)), 5: prm,
	}))
	compare(t, name, bytesF32(out[4]), want, 1e-6, 2e-5)
}

// A model-sized shape for the common 4-bit and 8-bit cases.
func TestQMVLarge(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	r := newRand(3)
	for _, bits := range []int{4, 8} {
		rows, cols := 512, 2048
		m := randQuant(r, rows, cols, bits, 64, false)
		x := randn(r, cols, 1)
		want := make([]float32, rows)
		kernels.MatMul(want, x, 1, m)
		w, s, b := quantBuffers(m)
		name := fmt.Sprintf("qmv_b%d_g64_bf16", bits)
		out := launch(t, p, name, qmvLaunch(rows, 1, map[int][]byte{
			0: w, 1: s, 2: b, 3: f32Bytes(x), 4: f32Bytes(make([]float32, rows)),
			5: params(qmvParams{uint32(rows), uint32(cols)}),
		}))
		compare(t, name, bytesF32(out[4]), want, 1e-6, 2e-5)
	}
}

// slotPool is a pool of quantized expert slots, each a [rows, cols] matrix,
// concatenated as the pager lays them out.
type slotPool struct {
	slots   []*kernels.Matrix
	w, s, b []byte
}

func newSlotPool(r *rand.Rand, nslots, rows, cols, bits, group int, f16 bool) *slotPool {
	p := &slotPool{}
	for range nslots {
		m := randQuant(r, rows, cols, bits, group, f16)
		p.slots = append(p.slots, m)
		w, s, b := quantBuffers(m)
		p.w, p.s, p.b = append(p.w, w...), append(p.s, s...), append(p.b, b...)
	}
	return p
}

// gatherCase is a routing: n tokens x topk experts, a table from expert to
// slot with one expert not resident (-1).
type gatherCase struct {
	n, topk int
	ids     []int32
	table   []int32
}

func newGatherCase(r *rand.Rand, n, topk, experts, nslots int) gatherCase {
	g := gatherCase{n: n, topk: topk, table: make([]int32, experts)}
	for e := range g.table {
		g.table[e] = int32(e % nslots)
	}
	g.table[experts-1] = -1
	for range n {
		for _, e := range r.Perm(experts)[:topk] {
			g.ids = append(g.ids, int32(e))
		}
	}
	g.ids[1] = int32(experts - 1) // make sure a missing expert is routed
	return g
}

// reference computes y[k] = W[slot(k)] x[k/xGroup] (zero for a missing slot).
func (g gatherCase) reference(pool *slotPool, x []float32, rows, cols, xGroup int) []float32 {
	y := make([]float32, g.n*g.topk*rows)
	for k, e := range g.ids {
		slot := g.table[e]
		if slot < 0 {
			continue
		}
		kernels.MatMul(y[k*rows:(k+1)*rows], x[(k/xGroup)*cols:(k/xGroup+1)*cols], 1, pool.slots[slot])
	}
	return y
}

func TestGatherQMV(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	r := newRand(4)
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				rows, cols := 20, 3*group
				pool := newSlotPool(r, 4, rows, cols, bits, group, f16)
				g := newGatherCase(r, 2, 3, 9, 4)
				pairs := g.n * g.topk
				suffix := fmt.Sprintf("_b%d_g%d_%s", bits, group, scaleName(f16))

				// Shared input per token (gate/up) and one input per pair (down).
				for _, xGroup := range []int{g.topk, 1} {
					x := randn(r, pairs/xGroup*cols, 1)
					want := g.reference(pool, x, rows, cols, xGroup)
					name := "gather_qmv" + suffix
					out := launch(t, p, name, qmvLaunch(rows, pairs, map[int][]byte{
						0: pool.w, 1: pool.s, 2: pool.b, 3: f32Bytes(x), 4: f32Bytes(make([]float32, pairs*rows)),
						5: i32Bytes(g.ids), 6: i32Bytes(g.table), 7: params(gatherParams{uint32(rows), uint32(cols), uint32(xGroup)}),
					}))
					compare(t, name, bytesF32(out[4]), want, 1e-6, 2e-5)
				}

				up := newSlotPool(r, 4, rows, cols, bits, group, f16)
				x := randn(r, g.n*cols, 1)
				gate := g.reference(pool, x, rows, cols, g.topk)
				want := make([]float32, len(gate))
				kernels.SwiGLU(want, gate, g.reference(up, x, rows, cols, g.topk))
				name := "gather_qmv_swiglu" + suffix
				out := launch(t, p, name, qmvLaunch(rows, pairs, map[int][]byte{
					0: pool.w, 1: pool.s, 2: pool.b, 3: up.w, 4: up.s, 5: up.b,
					6: f32Bytes(x), 7: f32Bytes(make([]float32, pairs*rows)),
					8: i32Bytes(g.ids), 9: i32Bytes(g.table), 10: params(gatherParams{uint32(rows), uint32(cols), uint32(g.topk)}),
				}))
				compare(t, name, bytesF32(out[7]), want, 1e-6, 2e-5)
			}
		}
	}
}

type qmmParams struct{ Rows, Cols, N uint32 }

// qmmTileLaunch is qmm's and qmm_rows': 32 x 32 tiles of simdgroup
// matrices.
func qmmTileLaunch(rows, n int, bufs map[int][]byte) Launch {
	return Launch{Groups: [3]int{(rows + 31) / 32, (n + 31) / 32, 1}, Threads: [3]int{128, 1, 1}, Buffers: bufs, Seed: uint64(rows*17 + n)}
}

func TestQMM(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	r := newRand(14)
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				// Ragged rows and a partial token tile; for 4 bits also
				// several tiles each way.
				shapes := [][2]int{{21, 11}}
				if bits == 4 {
					shapes = append(shapes, [2]int{70, 45})
				}
				for _, sh := range shapes {
					rows, cols, n := sh[0], 3*group, sh[1]
					checkProduct(t, p, r, "qmm", qmmTileLaunch, params(qmmParams{uint32(rows), uint32(cols), uint32(n)}), rows, cols, n, bits, group, f16)
				}
			}
		}
	}
}

// TestQMMRows runs qmm_rows, the prefill product of one expert over the
// tokens routed to it (rows of x picked by xrow, repeats allowed), against
// kernels.MatMul row by row.
func TestQMMRows(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	r := newRand(15)
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				rows, cols, tokens, n := 45, 2*group, 50, 37 // ragged rows, two token tiles
				m := randQuant(r, rows, cols, bits, group, f16)
				x := randn(r, tokens*cols, 1)
				xrow := make([]uint32, n)
				for i := range xrow {
					xrow[i] = uint32(r.IntN(tokens))
				}
				want := make([]float32, n*rows)
				for i, xr := range xrow {
					kernels.MatMul(want[i*rows:(i+1)*rows], x[int(xr)*cols:(int(xr)+1)*cols], 1, m)
				}
				w, s, b := quantBuffers(m)
				name := fmt.Sprintf("qmm_rows_b%d_g%d_%s", bits, group, scaleName(f16))
				out := launch(t, p, name, qmmTileLaunch(rows, n, map[int][]byte{
					0: w, 1: s, 2: b, 3: f32Bytes(x), 4: f32Bytes(make([]float32, n*rows)),
					5: params(qmmParams{uint32(rows), uint32(cols), uint32(n)}), 6: u32Bytes(xrow),
				}))
				compare(t, name, bytesF32(out[4]), want, 1e-6, 2e-5)
			}
		}
	}
}

func TestDequantRows(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	r := newRand(19)
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				rows, cols := 50, 3*group
				m := randQuant(r, rows, cols, bits, group, f16)
				ids := []int32{7, 0, 49, 7}
				want := make([]float32, len(ids)*cols)
				for k, id := range ids {
					m.Row(int(id), want[k*cols:(k+1)*cols])
				}
				w, s, b := quantBuffers(m)
				name := fmt.Sprintf("dequant_rows_b%d_g%d_%s", bits, group, scaleName(f16))
				out := launch(t, p, name, Launch{Groups: [3]int{(cols + 255) / 256, len(ids), 1}, Threads: [3]int{256, 1, 1},
					Buffers: map[int][]byte{0: w, 1: s, 2: b, 3: i32Bytes(ids), 4: f32Bytes(make([]float32, len(want))), 5: u32Bytes([]uint32{uint32(cols)})}})
				compare(t, name, bytesF32(out[4]), want, 0, 0)
			}
		}
	}
}
