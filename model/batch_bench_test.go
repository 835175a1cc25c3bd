package model_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/model"
)

// batchBenchEnv names a checkpoint (a `mlx-moe synth --scale` model that
// fits in memory) that BenchmarkBatchDecode runs besides the embedded one.
const batchBenchEnv = "MLXMOE_BENCH_MODEL"

// batchCapacityEnv, when set, adds a run of that model with its experts
// paged (exact policy, prefetching) at this many slots a layer.
const batchCapacityEnv = "MLXMOE_BENCH_CAPACITY"

// batchSizes are the sequences per decode step BenchmarkBatchDecode
// compares.
var batchSizes = []int{1, 2, 4}

// BenchmarkBatchDecode times decode steps of 1, 2 and 4 sequences
// (ForwardBatch, one token each), interleaved so that every size sees the
// same machine load, and reports each size's aggregate tok/s, its ratio to
// one sequence's (x2, x4), the same ratios by the process's CPU time
// (cpu-x2, cpu-x4: what they would be with the cores to itself, on a
// machine other jobs share) and one sequence's weight bytes per second as
// a fraction of the copy bandwidth measured in the same run.
func BenchmarkBatchDecode(b *testing.B) {
	dir, err := defaultmodel.Dir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	type benchModel struct {
		name, dir string
		capacity  int // 0: resident
	}
	models := []benchModel{{"trained-qwen3_next", dir, 0}}
	if d := os.Getenv(batchBenchEnv); d != "" {
		models = append(models, benchModel{"synth", d, 0})
		if c, err := strconv.Atoi(os.Getenv(batchCapacityEnv)); err == nil && c > 0 {
			models = append(models, benchModel{fmt.Sprintf("synth-paged-%d", c), d, c})
		}
	}
	bw := memoryBandwidth()
	for _, mod := range models {
		b.Run(mod.name, func(b *testing.B) {
			var m *model.Model
			if mod.capacity > 0 {
				m, _ = loadPaged(b, mod.dir, func(int) int { return mod.capacity })
			} else {
				var err error
				if m, err = model.Load(mod.dir); err != nil {
					b.Fatal(err)
				}
				defer m.Close()
			}
			e := cpu.New()
			defer useBenchActivations(b, e)()
			rn := model.NewRunner(m, e)
			defer rn.Free()
			rn.Prefetch = mod.capacity > 0 // as the library runs a pager
			maxSeqs := batchSizes[len(batchSizes)-1]
			segs := make([]model.Segment, maxSeqs)
			for i := range segs {
				c := m.NewCache(e, 8+len(batchSizes)*b.N)
				defer c.Free(e)
				if _, err := rn.Forward(c, []int32{int32(i + 1), 2, 3, 4}, false); err != nil {
					b.Fatal(err)
				}
				segs[i] = model.Segment{Cache: c, IDs: []int32{int32(i)}, Logits: make([]float32, m.Config.VocabSize)}
			}
			elapsed, cpuTime := make([]time.Duration, len(batchSizes)), make([]time.Duration, len(batchSizes))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j, n := range batchSizes {
					start, cpuStart := time.Now(), processCPU()
					if err := rn.ForwardBatch(segs[:n]); err != nil {
						b.Fatal(err)
					}
					elapsed[j] += time.Since(start)
					cpuTime[j] += processCPU() - cpuStart
					for _, s := range segs[:n] {
						s.IDs[0] = (s.IDs[0]*31 + 7) % int32(m.Config.VocabSize)
					}
				}
			}
			tps := make([]float64, len(batchSizes))
			for j, n := range batchSizes {
				tps[j] = float64(n*b.N) / elapsed[j].Seconds()
				b.ReportMetric(tps[j], fmt.Sprintf("tok/s-%d", n))
				if j > 0 {
					b.ReportMetric(tps[j]/tps[0], fmt.Sprintf("x%d", n))
					perCPU := float64(n) * cpuTime[0].Seconds() / cpuTime[j].Seconds()
					b.ReportMetric(perCPU, fmt.Sprintf("cpu-x%d", n))
				}
			}
			if mod.capacity == 0 {
				b.ReportMetric(tps[0]*float64(activeBytes(m))/bw, "frac-of-mem-bw-1")
			}
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var u syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &u) != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
