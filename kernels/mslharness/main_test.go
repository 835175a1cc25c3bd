package mslharness

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// mslDir holds the shaders under test.
const mslDir = "../msl"

var (
	buildDir string

	progMu sync.Mutex
	progs  = make(map[string]*builtProgram)

	statsMu sync.Mutex
	maxErr  = make(map[string]float64) // kernel -> max abs error seen
	ran     = make(map[string]bool)    // kernels launched by some test
)

type builtProgram struct {
	once sync.Once
	prog *Program
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "mslharness")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	printErrors()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		code = checkEveryKernelRan()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// printErrors reports the max error of every kernel that ran.
func printErrors() {
	names := make([]string, 0, len(maxErr))
	for k := range maxErr {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 0 {
		fmt.Println("max abs error per kernel (vs the Go reference):")
	}
	for _, k := range names {
		fmt.Printf("  %-34s %.3g\n", k, maxErr[k])
	}
}

// checkEveryKernelRan fails the run when a kernel of some shader file was
// never launched by a test: every shader kernel must be checked.
func checkEveryKernelRan() int {
	if _, err := Compiler(); err != nil {
		return 0
	}
	files, _ := filepath.Glob(filepath.Join(mslDir, "*.metal"))
	code := 0
	for _, f := range files {
		p, err := build(f)
		if err != nil {
			fmt.Println(err)
			code = 1
			continue
		}
		for name := range p.Kernels {
			if !ran[name] {
				fmt.Printf("%s: kernel %s has no harness test\n", filepath.Base(f), name)
				code = 1
			}
		}
	}
	return code
}

func build(file string) (*Program, error) {
	progMu.Lock()
	bp := progs[file]
	if bp == nil {
		bp = &builtProgram{}
		progs[file] = bp
	}
	progMu.Unlock()
	bp.once.Do(func() {
		dir := filepath.Join(buildDir, filepath.Base(file))
		if bp.err = os.MkdirAll(dir, 0o755); bp.err == nil {
			bp.prog, bp.err = Build(file, filepath.Join(mslDir, "compat"), dir)
		}
	})
	return bp.prog, bp.err
}

// program returns the compiled shader file (a name in kernels/msl, or a
// path relative to this package), skipping the test when no compiler is
// installed.
func program(t *testing.T, name string) *Program {
	t.Helper()
	if _, err := Compiler(); err != nil {
		t.Skip(err)
	}
	if filepath.Dir(name) == "." {
		name = filepath.Join(mslDir, name)
	}
	p, err := build(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch runs a kernel, failing the test on error.
func launch(t *testing.T, p *Program, kernel string, l Launch) map[int][]byte {
	t.Helper()
	statsMu.Lock()
	ran[kernel] = true
	statsMu.Unlock()
	out, err := p.Run(kernel, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compare checks got against want with tolerance atol + rtol*max|want| and
// records the max abs error under the kernel's name.
func compare(t *testing.T, kernel string, got, want []float32, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", kernel, len(got), len(want))
	}
	worst, bad, first := mismatches(got, want, atol, rtol)
	for _, i := range first {
		t.Errorf("%s: [%d] = %g, want %g", kernel, i, got[i], want[i])
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance (max abs error %.3g)", kernel, bad, len(got), worst)
	}
	statsMu.Lock()
	maxErr[kernel] = math.Max(maxErr[kernel], worst)
	statsMu.Unlock()
}

// mismatches returns the max abs error, the number of values beyond
// atol + rtol*max|want|, and the first few of their indices.
func mismatches(got, want []float32, atol, rtol float64) (worst float64, bad int, first []int) {
	var scale float64
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	tol := atol + rtol*scale
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		worst = math.Max(worst, d)
		if d > tol {
			if bad < 5 {
				first = append(first, i)
			}
			bad++
		}
	}
	return worst, bad, first
}

// Byte conversions for buffers.

func f32Bytes(x []float32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

func u32Bytes(x []uint32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func i32Bytes(x []int32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func bytesI32(b []byte) []int32 {
	x := make([]int32, len(b)/4)
	for i := range x {
		x[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

func u16Bytes(x []uint16) []byte {
	b := make([]byte, 0, 2*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

// params encodes a struct of 4-byte fields as the shader's constant buffer.
func params(v any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		panic(err)
	}
	return b
}

// Random data.

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6d736c)) }

func randn(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// f32ToBF16 rounds to nearest even.
func f32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// f32ToF16 rounds a float in half's normal range to nearest even.
func f32ToF16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	a := u & 0x7fffffff
	if a < 0x38800000 { // below half's normal range: flush to zero
		return sign
	}
	a += 0xfff + (a>>13)&1 - 112<<23
	return sign | uint16(a>>13)
}

// randQuant returns a random quantized [rows, cols] matrix with scales of
// either sign.
func randQuant(r *rand.Rand, rows, cols, bits, group int, f16 bool) *kernels.Matrix {
	q := &kernels.Quant{Bits: bits, GroupSize: group, F16Scales: f16}
	q.W = make([]uint32, rows*cols*bits/32)
	for i := range q.W {
		q.W[i] = r.Uint32()
	}
	n := rows * cols / group
	q.Scales, q.Biases = make([]uint16, n), make([]uint16, n)
	conv := f32ToBF16
	if f16 {
		conv = f32ToF16
	}
	for i := range n {
		s := float32(0.001+0.02*r.Float64()) / float32(int(1)<<bits) * 16
		if r.IntN(4) == 0 {
			s = -s
		}
		q.Scales[i] = conv(s)
		q.Biases[i] = conv(float32(r.NormFloat64()) * 0.05)
	}
	return &kernels.Matrix{Rows: rows, Cols: cols, Q: q}
}
