package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var benchCmd = &command{name: "bench", summary: "measure the executor's kernels in GB/s against the machine's streaming-read bandwidth"}

func init() {
	benchCmd.run = runBench
	register(benchCmd)
}

// benchKernel is one measured operation: run issues it once; bytes is the
// memory it must read, flops its arithmetic.
type benchKernel struct {
	name, shape  string
	bytes, flops int64
	run          func()
}

// benchEnv is what a bench suite builds its kernels from.
type benchEnv struct {
	e       graph.Executor
	rng     *rand.Rand
	experts int // routed experts to allocate for the MoE lines
	cold    int // bytes of copies a cold matvec cycles through
}

// benchSuites build the measured kernels after dram_read, in order. Other
// files add theirs from init (the GEMM and attention lines).
var benchSuites = []func(*benchEnv) ([]benchKernel, error){benchDecode, benchTable}

// benchResult is one line of --json output.
type benchResult struct {
	Kernel  string  `json:"kernel"`
	Shape   string  `json:"shape"`
	Threads int     `json:"threads"`
	GBps    float64 `json:"gbps"`
	GFLOPS  float64 `json:"gflops"`
	OfDRAM  float64 `json:"of_dram"`
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(benchCmd, `bench [--device cpu|metal] [--seconds 2] [--json] [--threads N]

Measures the machine's streaming-read bandwidth (dram_read: all threads over
--dram-mib of memory) and then, in the same run, the decode and prefill
kernels at Qwen3-Coder-Next sizes on the chosen executor: 4- and 8-bit
matvec 4096x14336 for one token (several copies, so the weights come from
memory), a whole MoE layer for one token (10 of --experts experts of
512x2048 gate/up and 2048x512 down, 4-bit group 64, a different 10 each
run so they are not cache resident), and the older 4096x2048 table; then
a 512-token GEMM through a 4-bit 4096x14336 matrix and one token's
attention over 4k and 32k cached positions (bench_prefill.go),
and over half, 8- and 4-bit caches at 8k and 32k (bench_kv.go). Each
kernel reports weight (or KV cache) GB/s, GFLOP/s and the fraction of
dram_read.`, stderr)
	device := fs.String("device", "", "cpu or metal (default: metal on Apple silicon, else cpu)")
	seconds := fs.Float64("seconds", 2, "time spent on each kernel")
	asJSON := fs.Bool("json", false, `print one JSON object per kernel: {"kernel","shape","threads","gbps","gflops","of_dram"}`)
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "threads the kernels may use")
	dramMiB := fs.Int("dram-mib", 1024, "size of the streaming-read buffer in MiB")
	clock := fs.String("clock", "wall", "wall, or cpu: time runs by the process's CPU time divided by --threads, which on a machine shared with other jobs estimates what the kernels do when they have the cores (every line, dram_read included, is timed the same way; the worker pool's polling between parallel regions counts as CPU time, so a line with short regions reads low)")
	experts := fs.Int("experts", 512, "routed experts to allocate for the MoE line (at least 10)")
	only := fs.String("kernels", "", "a regular expression: measure only the kernels whose names match it (dram_read always runs)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured runs to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	match, err := regexp.Compile(*only)
	if err != nil {
		return fmt.Errorf("bench: --kernels %q: %v", *only, err)
	}
	if *clock != "wall" && *clock != "cpu" {
		return fmt.Errorf("bench: --clock %q is not wall or cpu", *clock)
	}
	if *clock == "cpu" && !haveCPUTime {
		return fmt.Errorf("bench: --clock cpu needs getrusage, which this system lacks")
	}
	if *threads < 1 || *dramMiB < 1 || *experts < 10 {
		return fmt.Errorf("bench: --threads (%d) and --dram-mib (%d) must be positive and --experts (%d) at least 10", *threads, *dramMiB, *experts)
	}
	runtime.GOMAXPROCS(*threads)
	e, err := mlxmoe.NewExecutor(*device, stderr)
	if err != nil {
		return err
	}
	env := &benchEnv{e: e, rng: rand.New(rand.NewPCG(1, 2)), experts: *experts, cold: min(256, *dramMiB) << 20}
	dram := make([]byte, *dramMiB<<20)
	fillRandom(env.rng, dram)
	list := []benchKernel{{"dram_read", fmt.Sprintf("%d MiB", *dramMiB), int64(len(dram)), 0, func() { kernels.StreamRead(dram) }}}
	for _, suite := range benchSuites {
		ks, err := suite(env)
		if err != nil {
			return err
		}
		list = append(list, ks...)
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "executor %s, %d threads\n%-16s %-44s %9s %9s %9s\n", e.Name(), *threads, "kernel", "shape", "GB/s", "of dram", "GFLOP/s")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: --cpuprofile %s: %v", *cpuProfile, err)
		}
		defer pprof.StopCPUProfile()
	}
	enc := json.NewEncoder(stdout)
	var dramRate float64
	for _, k := range list {
		if k.name != "dram_read" && !match.MatchString(k.name) {
			continue
		}
		perSec, err := measure(e, k, *seconds, *clock == "cpu", *threads)
		if err != nil {
			return err
		}
		rate := float64(k.bytes) * perSec
		if k.name == "dram_read" {
			dramRate = rate
		}
		r := benchResult{k.name, k.shape, *threads, round3(rate / 1e9), round3(float64(k.flops) * perSec / 1e9), round3(rate / dramRate)}
		if *asJSON {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%-16s %-44s %9.2f %9.3f %9.2f\n", r.Kernel, r.Shape, r.GBps, r.OfDRAM, r.GFLOPS)
	}
	return nil
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// fillRandom fills b from rng eight bytes at a time.
func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// randomQuant is a [rows, cols] matrix of random codes with small random
// bf16 scales and biases: what the kernels read, without quantizing.
func randomQuant(rng *rand.Rand, rows, cols, bits, group int) *kernels.Matrix {
	q := &kernels.Quant{Bits: bits, GroupSize: group,
		W: make([]uint32, rows*cols*bits/32), Scales: make([]uint16, rows*cols/group), Biases: make([]uint16, rows*cols/group)}
	for i := range q.W {
		q.W[i] = rng.Uint32()
	}
	for i := range q.Scales {
		q.Scales[i] = kernels.F32ToBF16(float32(rng.NormFloat64() * 0.01))
		q.Biases[i] = kernels.F32ToBF16(float32(rng.NormFloat64() * 0.05))
	}
	return &kernels.Matrix{Rows: rows, Cols: cols, Q: q}
}

// coldMatrices returns enough copies of a random matrix that cycling
// through them reads at least cold bytes (256 MiB unless --dram-mib is
// smaller), more than any cache.
func coldMatrices(rng *rand.Rand, cold, rows, cols, bits, group int) []*kernels.Matrix {
	var ms []*kernels.Matrix
	for total := 0; total < cold; total += ms[len(ms)-1].Bytes() {
		ms = append(ms, randomQuant(rng, rows, cols, bits, group))
	}
	return ms
}

// benchDecode: one token through 4096x14336 matrices and through a
// Qwen3-Coder-Next MoE layer.
func benchDecode(env *benchEnv) ([]benchKernel, error) {
	e := env.e
	const rows, cols = 4096, 14336
	x := e.NewTensor(1, cols)
	for i := range x.Data {
		x.Data[i] = float32(env.rng.NormFloat64())
	}
	out := e.NewTensor(1, rows)
	var list []benchKernel
	for _, bits := range []int{4, 8} {
		ms := coldMatrices(env.rng, env.cold, rows, cols, bits, 64)
		i := 0
		list = append(list, benchKernel{fmt.Sprintf("matvec_q%d", bits), fmt.Sprintf("%dx%d n=1 g64", rows, cols),
			int64(ms[0].Bytes()), 2 * rows * cols, func() {
				e.MatMul(out, x, 1, ms[i%len(ms)], nil)
				i++
			}})
	}
	k, err := benchMoE(env)
	if err != nil {
		return nil, err
	}
	list = append(list, k)
	// The same kernels on int16 activations (kernels.Int16Activations),
	// then on int8: every matvec input (kernels.Int8Activations) for the
	// matvec lines; for the MoE, the experts' gate and up inputs
	// (cpu.Executor.Int8Experts) with int16 down (moe_q4_i8), and all three
	// (Int8ExpertDown as well: moe_q4_i8_down).
	base := len(list)
	for _, k := range list[:base] {
		run := k.run
		k.name += "_i16"
		k.run = func() {
			kernels.Int16Activations = true
			run()
			kernels.Int16Activations = false
		}
		list = append(list, k)
	}
	for _, k := range list[:base] {
		run := k.run
		k.name += "_i8"
		k.run = func() {
			kernels.Int8Activations = true
			run()
			kernels.Int8Activations = false
		}
		if c, ok := e.(*cpu.Executor); ok && k.name == "moe_q4_i8" {
			for _, down := range []bool{false, true} {
				k.run = func() {
					kernels.Int16Activations, c.Int8Experts, c.Int8ExpertDown = true, true, down
					run()
					kernels.Int16Activations, c.Int8Experts, c.Int8ExpertDown = false, false, false
				}
				if down {
					k.name += "_down"
				}
				list = append(list, k)
			}
			continue
		}
		list = append(list, k)
	}
	return list, nil
}

// benchExperts is a resident graph.ExpertSet for the MoE line.
type benchExperts struct{ gate, up, down []*kernels.Matrix }

func (b *benchExperts) NumExperts() int { return len(b.gate) }
func (b *benchExperts) MaxResolve() int { return 0 }
func (b *benchExperts) Resolve(ids []int32) ([]bool, error) {
	p := make([]bool, len(ids))
	for i := range p {
		p[i] = true
	}
	return p, nil
}
func (b *benchExperts) Expert(id int32) (g, u, d *kernels.Matrix) {
	return b.gate[id], b.up[id], b.down[id]
}

// benchMoE: a Qwen3-Coder-Next MoE layer (hidden 2048, expert size 512,
// top-10) for one token, each run routing to the next ten experts so none
// is in cache when it is read.
func benchMoE(env *benchEnv) (benchKernel, error) {
	const hidden, inter, topK = 2048, 512, 10
	set := &benchExperts{}
	for i := 0; i < env.experts; i++ {
		set.gate = append(set.gate, randomQuant(env.rng, inter, hidden, 4, 64))
		set.up = append(set.up, randomQuant(env.rng, inter, hidden, 4, 64))
		set.down = append(set.down, randomQuant(env.rng, hidden, inter, 4, 64))
	}
	e := env.e
	x, out := e.NewTensor(1, hidden), e.NewTensor(1, hidden)
	for i := range x.Data {
		x.Data[i] = float32(env.rng.NormFloat64())
	}
	r := &graph.Routes{Tokens: 1, TopK: topK, IDs: make([]int32, topK), Weights: make([]float32, topK)}
	next := 0
	perExpert := set.gate[0].Bytes() + set.up[0].Bytes() + set.down[0].Bytes()
	var runErr error
	return benchKernel{"moe_q4", fmt.Sprintf("%d of %d experts 512x2048+2048x512 n=1", topK, env.experts),
		int64(topK * perExpert), 2 * topK * 3 * hidden * inter, func() {
			for k := range r.IDs {
				r.IDs[k] = int32((next + k) % env.experts)
				r.Weights[k] = 1.0 / topK
			}
			next += topK
			if err := e.MoE(out, x, 1, r, set); err != nil && runErr == nil {
				runErr = err
			}
		}}, runErr
}

// benchTable is the older 4096x2048 group-64 table: qmv for one token and
// qmm for 128, plus a copy.
func benchTable(env *benchEnv) ([]benchKernel, error) {
	e := env.e
	const rows, cols, batch = 4096, 2048, 128
	copySrc, copyDst := e.NewTensor(8192, 8192), e.NewTensor(8192, 8192)
	x := e.NewTensor(batch, cols)
	for i := range x.Data {
		x.Data[i] = float32(env.rng.NormFloat64())
	}
	out := e.NewTensor(batch, rows)
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(env.rng.NormFloat64() * 0.02)
	}
	list := []benchKernel{{"copy", "256 MiB", int64(4 * len(copySrc.Data)), 0, func() {
		e.CopyCols(copyDst, 0, 0, copySrc, 0, 0, copySrc.Rows, copySrc.Cols)
	}}}
	for _, bits := range []int{4, 8} {
		m, err := kernels.Quantize(w, rows, cols, bits, 64)
		if err != nil {
			return nil, err
		}
		list = append(list,
			benchKernel{fmt.Sprintf("qmv %d-bit", bits), fmt.Sprintf("%dx%d n=1 g64", rows, cols), int64(m.Bytes()), 2 * rows * cols, func() { e.MatMul(out, x, 1, m, nil) }},
			benchKernel{fmt.Sprintf("qmm %d-bit", bits), fmt.Sprintf("%dx%d n=%d g64", rows, cols, batch), int64(m.Bytes()), 2 * rows * cols * batch, func() { e.MatMul(out, x, batch, m, nil) }})
	}
	return list, nil
}

// measure repeats k for about seconds and returns runs per second of wall
// time, or with cpuClock per second of process CPU time / threads.
func measure(e graph.Executor, k benchKernel, seconds float64, cpuClock bool, threads int) (float64, error) {
	k.run() // warm up: pipelines, weight upload
	if err := e.Sync(); err != nil {
		return 0, err
	}
	n := 0
	start, cpu0 := time.Now(), processCPUTime()
	for time.Since(start).Seconds() < seconds {
		k.run()
		if err := e.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	elapsed := time.Since(start).Seconds()
	if cpuClock {
		elapsed = (processCPUTime() - cpu0).Seconds() / float64(threads)
	}
	return float64(n) / elapsed, nil
}
