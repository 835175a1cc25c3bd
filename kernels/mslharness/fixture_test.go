package mslharness

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// fixtureDir holds the repository's tiny model fixtures (real MLX-quantized
// weights of the supported families).
const fixtureDir = "../../testdata/fixtures"

type tensor struct {
	dtype string
	shape []int
	data  []byte
}

// readSafetensors reads a gzip-compressed safetensors file.
func readSafetensors(t *testing.T, path string) map[string]tensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(raw) < 8 {
		t.Fatalf("%s: too short for a safetensors header", path)
	}
	n := binary.LittleEndian.Uint64(raw)
	if uint64(len(raw)) < 8+n {
		t.Fatalf("%s: header of %d bytes runs past the file", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	body := raw[8+n:]
	out := make(map[string]tensor)
	for name, msg := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			t.Fatalf("%s: tensor %s: %v", path, name, err)
		}
		out[name] = tensor{e.Dtype, e.Shape, body[e.Offsets[0]:e.Offsets[1]]}
	}
	return out
}

func (tn tensor) u16() []uint16 {
	x := make([]uint16, len(tn.data)/2)
	for i := range x {
		x[i] = binary.LittleEndian.Uint16(tn.data[2*i:])
	}
	return x
}

func (tn tensor) u32() []uint32 {
	x := make([]uint32, len(tn.data)/4)
	for i := range x {
		x[i] = binary.LittleEndian.Uint32(tn.data[4*i:])
	}
	return x
}

// f32 converts a BF16 or F32 tensor.
func (tn tensor) f32(t *testing.T) []float32 {
	switch tn.dtype {
	case "F32":
		return bytesF32(tn.data)
	case "BF16":
		u := tn.u16()
		x := make([]float32, len(u))
		for i, v := range u {
			x[i] = kernels.BF16ToF32(v)
		}
		return x
	}
	t.Fatalf("dtype %s is not float", tn.dtype)
	return nil
}

// quantized is one quantized weight of a fixture, possibly stacked [E, ...].
type quantized struct {
	experts, rows, cols, bits, group int
	w, s, b                          []byte
}

func loadQuant(t *testing.T, ts map[string]tensor, prefix string, bits, group int) quantized {
	t.Helper()
	w, ok := ts[prefix+".weight"]
	if !ok {
		t.Fatalf("fixture has no %s.weight", prefix)
	}
	q := quantized{experts: 1, bits: bits, group: group, w: w.data, s: ts[prefix+".scales"].data, b: ts[prefix+".biases"].data}
	shape := w.shape
	if len(shape) == 3 {
		q.experts, shape = shape[0], shape[1:]
	}
	q.rows, q.cols = shape[0], shape[1]*32/bits
	if len(q.s) != 2*q.experts*q.rows*q.cols/group || len(q.b) != len(q.s) {
		t.Fatalf("%s: scales/biases do not match %d bits, group %d", prefix, bits, group)
	}
	return q
}

// matrix returns expert e (or the only matrix) for the Go reference.
func (q quantized) matrix(e int) *kernels.Matrix {
	words, groups := q.rows*q.cols*q.bits/32, q.rows*q.cols/q.group
	w := bytesU32(q.w[4*e*words : 4*(e+1)*words])
	s := bytesU16(q.s[2*e*groups : 2*(e+1)*groups])
	b := bytesU16(q.b[2*e*groups : 2*(e+1)*groups])
	return &kernels.Matrix{Rows: q.rows, Cols: q.cols, Q: &kernels.Quant{Bits: q.bits, GroupSize: q.group, W: w, Scales: s, Biases: b}}
}

func (q quantized) suffix() string { return fmt.Sprintf("_b%d_g%d_bf16", q.bits, q.group) }

func bytesU32(b []byte) []uint32 { return tensor{data: b}.u32() }
func bytesU16(b []byte) []uint16 { return tensor{data: b}.u16() }

// TestFixtureMoEBlock runs layer 0's MoE block of the qwen3_next fixture
// (8-bit router, 32 experts at 4 bits in one slot pool as the pager lays
// them out, top-4) through the kernels a decode step uses, each stage fed
// with the previous stage's shader output and compared with the Go
// reference of that stage on the same input.
func TestFixtureMoEBlock(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	e := program(t, "elementwise.metal")
	rt := program(t, "route.metal")
	ts := readSafetensors(t, fixtureDir+"/qwen3_next-4bit/model.safetensors.gz")
	const pre = "model.layers.0.mlp."
	router := loadQuant(t, ts, pre+"gate", 8, 64)
	gate := loadQuant(t, ts, pre+"switch_mlp.gate_proj", 4, 64)
	up := loadQuant(t, ts, pre+"switch_mlp.up_proj", 4, 64)
	down := loadQuant(t, ts, pre+"switch_mlp.down_proj", 4, 64)
	hidden, inter, experts, topk := router.cols, gate.rows, router.rows, 4
	r := newRand(16)
	x := randn(r, hidden, 1)

	// Router logits.
	want := make([]float32, experts)
	kernels.MatMul(want, x, 1, router.matrix(0))
	out := launch(t, p, "qmv"+router.suffix(), qmvLaunch(experts, 1, map[int][]byte{
		0: router.w, 1: router.s, 2: router.b, 3: f32Bytes(x), 4: f32Bytes(make([]float32, experts)),
		5: params(qmvParams{uint32(experts), uint32(hidden)}),
	}))
	logits := bytesF32(out[4])
	compare(t, "qmv"+router.suffix(), logits, want, 1e-6, 2e-5)

	// Softmax top-4, normalised.
	routing := kernels.Routing{TopK: topk, Normalize: true, Scale: 1}
	wantIDs, wantW := make([]int32, topk), make([]float32, topk)
	kernels.Route(logits, &routing, wantIDs, wantW, nil)
	out = launch(t, rt, "route", Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{256, 1, 1}, Buffers: map[int][]byte{
		0: f32Bytes(logits), 1: f32Bytes(make([]float32, experts)), 2: i32Bytes(make([]int32, topk)), 3: f32Bytes(make([]float32, topk)),
		4: params(routeParams{uint32(experts), uint32(topk), 0, 0, 1, 0, 1, 1}),
	}})
	ids, weights := bytesI32(out[2]), bytesF32(out[3])
	if fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
		t.Fatalf("route: ids %v, want %v", ids, wantIDs)
	}
	compare(t, "route", weights, wantW, 1e-7, 1e-5)

	// Fused gate/up + SwiGLU over the slot pool (every expert resident: slot = id).
	table := make([]int32, experts)
	for i := range table {
		table[i] = int32(i)
	}
	want = make([]float32, topk*inter)
	g, u := make([]float32, inter), make([]float32, inter)
	for k, id := range ids {
		kernels.MatMul(g, x, 1, gate.matrix(int(id)))
		kernels.MatMul(u, x, 1, up.matrix(int(id)))
		kernels.SwiGLU(want[k*inter:(k+1)*inter], g, u)
	}
	out = launch(t, p, "gather_qmv_swiglu"+gate.suffix(), qmvLaunch(inter, topk, map[int][]byte{
		0: gate.w, 1: gate.s, 2: gate.b, 3: up.w, 4: up.s, 5: up.b, 6: f32Bytes(x), 7: f32Bytes(make([]float32, topk*inter)),
		8: i32Bytes(ids), 9: i32Bytes(table), 10: params(gatherParams{uint32(inter), uint32(hidden), uint32(topk)}),
	}))
	act := bytesF32(out[7])
	compare(t, "gather_qmv_swiglu"+gate.suffix(), act, want, 1e-6, 2e-5)

	// Down projection, one input per expert.
	want = make([]float32, topk*hidden)
	for k, id := range ids {
		kernels.MatMul(want[k*hidden:(k+1)*hidden], act[k*inter:(k+1)*inter], 1, down.matrix(int(id)))
	}
	out = launch(t, p, "gather_qmv"+down.suffix(), qmvLaunch(hidden, topk, map[int][]byte{
		0: down.w, 1: down.s, 2: down.b, 3: f32Bytes(act), 4: f32Bytes(make([]float32, topk*hidden)),
		5: i32Bytes(ids), 6: i32Bytes(table), 7: params(gatherParams{uint32(hidden), uint32(inter), 1}),
	}))
	y := bytesF32(out[4])
	compare(t, "gather_qmv"+down.suffix(), y, want, 1e-6, 2e-5)

	// Weighted sum into the residual stream.
	want = append([]float32(nil), x...)
	for k := range topk {
		kernels.AddScaled(want, y[k*hidden:(k+1)*hidden], weights[k])
	}
	out = launch(t, e, "moe_combine", oneD(hidden, map[int][]byte{
		0: f32Bytes(x), 1: f32Bytes(y), 2: f32Bytes(weights), 3: f32Bytes(make([]float32, hidden)),
		4: u32Bytes([]uint32{uint32(hidden)}), 5: u32Bytes([]uint32{uint32(topk)}),
	}))
	compare(t, "moe_combine", bytesF32(out[3]), want, 1e-6, 1e-6)
}

// TestFixtureProjections runs real 3-bit (group 32) and 8-bit attention
// projections through qmv and qmm, and the qwen3_next conv1d weight through
// conv1d.
func TestFixtureProjections(t *testing.T) {
	t.Parallel()
	p := program(t, "quantized.metal")
	d := program(t, "delta.metal")
	r := newRand(17)
	for _, c := range []struct {
		fixture     string
		bits, group int
	}{{"qwen3_moe-3bit-g32", 3, 32}, {"qwen3_moe-8bit", 8, 64}} {
		ts := readSafetensors(t, fixtureDir+"/"+c.fixture+"/model.safetensors.gz")
		q := loadQuant(t, ts, "model.layers.0.self_attn.q_proj", c.bits, c.group)
		n := 5
		x := randn(r, n*q.cols, 1)
		want := make([]float32, n*q.rows)
		kernels.MatMul(want, x, n, q.matrix(0))
		bufs := func(kind any) map[int][]byte {
			return map[int][]byte{0: q.w, 1: q.s, 2: q.b, 3: f32Bytes(x), 4: f32Bytes(make([]float32, n*q.rows)), 5: params(kind)}
		}
		out := launch(t, p, "qmv"+q.suffix(), qmvLaunch(q.rows, n, bufs(qmvParams{uint32(q.rows), uint32(q.cols)})))
		compare(t, "qmv"+q.suffix(), bytesF32(out[4]), want, 1e-6, 2e-5)
		out = launch(t, p, "qmm"+q.suffix(), qmmTileLaunch(q.rows, n, bufs(qmmParams{uint32(q.rows), uint32(q.cols), uint32(n)})))
		compare(t, "qmm"+q.suffix(), bytesF32(out[4]), want, 1e-6, 2e-5)
	}

	ts := readSafetensors(t, fixtureDir+"/qwen3_next-4bit/model.safetensors.gz")
	cw := ts["model.layers.0.linear_attn.conv1d.weight"] // MLX layout [C, K, 1]
	channels, kernel := cw.shape[0], cw.shape[1]
	w := cw.f32(t)
	state := make([]float32, channels*(kernel-1)) // a fresh sequence
	n := 6
	x := randn(r, n*channels, 1)
	want := make([]float32, n*channels)
	wantState := append([]float32(nil), state...)
	kernels.Conv1dPrefill(wantState, x, w, want, n, channels, kernel)
	out := launch(t, d, "conv1d", Launch{Groups: [3]int{(channels + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1},
		Buffers: map[int][]byte{0: f32Bytes(state), 1: f32Bytes(x), 2: f32Bytes(w), 3: f32Bytes(make([]float32, n*channels)),
			4: u32Bytes([]uint32{uint32(channels), uint32(kernel), uint32(n)})}})
	compare(t, "conv1d", bytesF32(out[3]), want, 1e-6, 1e-6)
	if !bytes.Equal(out[0], f32Bytes(wantState)) {
		t.Error("conv1d: state after prefill differs from Conv1dPrefill's")
	}
}
