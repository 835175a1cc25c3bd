package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var benchCmd = &command{name: "bench", summary: "measure the executor's kernels in GB/s against its own copy bandwidth"}

func init() {
	benchCmd.run = runBench
	register(benchCmd)
}

// benchKernel is one measured operation: run issues it once; bytes is the
// memory it must read, flops its arithmetic.
type benchKernel struct {
	name         string
	bytes, flops int64
	run          func()
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(benchCmd, `bench [--device cpu|metal] [--seconds 2]

Runs the decode and prefill matrix kernels at Qwen3-Coder-Next sizes (4096 x
2048, group 64) on the chosen executor and prints the weight bytes read per
second next to the same executor's copy bandwidth, measured in the same run.`, stderr)
	device := fs.String("device", "", "cpu or metal (default: metal on Apple silicon, else cpu)")
	seconds := fs.Float64("seconds", 2, "time spent on each kernel")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := mlxmoe.NewExecutor(*device, stderr)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, cols, batch = 4096, 2048, 128
	copySrc, copyDst := e.NewTensor(8192, 8192), e.NewTensor(8192, 8192)
	x := e.NewTensor(batch, cols)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	out := e.NewTensor(batch, rows)
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.02)
	}
	list := []benchKernel{{"copy", int64(4 * len(copySrc.Data)), 0, func() {
		e.CopyCols(copyDst, 0, 0, copySrc, 0, 0, copySrc.Rows, copySrc.Cols)
	}}}
	for _, bits := range []int{4, 8} {
		m, err := kernels.Quantize(w, rows, cols, bits, 64)
		if err != nil {
			return err
		}
		list = append(list,
			benchKernel{fmt.Sprintf("qmv %d-bit (1 token)", bits), int64(m.Bytes()), 2 * rows * cols, func() { e.MatMul(out, x, 1, m, nil) }},
			benchKernel{fmt.Sprintf("qmm %d-bit (%d tokens)", bits, batch), int64(m.Bytes()), 2 * rows * cols * batch, func() { e.MatMul(out, x, batch, m, nil) }})
	}
	fmt.Fprintf(stdout, "executor %s\n%-22s %10s %10s %10s\n", e.Name(), "kernel", "GB/s", "vs copy", "GFLOP/s")
	var copyRate float64
	for _, k := range list {
		perSec, err := measure(e, k, *seconds)
		if err != nil {
			return err
		}
		rate := float64(k.bytes) * perSec
		if k.name == "copy" {
			copyRate = rate
		}
		fmt.Fprintf(stdout, "%-22s %10.2f %10.3f %10.2f\n", k.name, rate/1e9, rate/copyRate, float64(k.flops)*perSec/1e9)
	}
	return nil
}

// measure repeats k for about seconds and returns runs per second.
func measure(e graph.Executor, k benchKernel, seconds float64) (float64, error) {
	k.run() // warm up: pipelines, weight upload
	if err := e.Sync(); err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start).Seconds() < seconds {
		k.run()
		if err := e.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
