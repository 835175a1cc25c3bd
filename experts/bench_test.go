package experts

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Qwen3-Coder-Next expert parts: gate and up [512, 2048], down [2048, 512],
// 4-bit weights with bf16 scales and biases per group of 64.
var coderNextParts = []int64{524288, 32768, 32768, 524288, 32768, 32768, 524288, 32768, 32768}

// writeBenchModel writes layers x experts Coder-Next-sized experts in the
// stacked MLX layout (one tensor per part, all experts back to back).
func writeBenchModel(b *testing.B, dir string, layers, experts int) (string, []LayerSpec) {
	path := filepath.Join(dir, "experts.safetensors")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 8<<20)
	r := rand.New(rand.NewPCG(1, 1)) // random bytes, deterministic
	off := int64(4096 + 40)          // a header of awkward length (a multiple of 8), as in real files
	w.Write(make([]byte, off))
	specs := make([]LayerSpec, layers)
	var word [8]byte
	for l := range specs {
		specs[l].Experts = make([][]Extent, experts)
		for _, n := range coderNextParts {
			for e := range experts {
				specs[l].Experts[e] = append(specs[l].Experts[e], Extent{File: path, Offset: off, Length: n})
				for range n / 8 {
					binary.LittleEndian.PutUint64(word[:], r.Uint64())
					w.Write(word[:])
				}
				off += n
			}
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, specs
}

// rawRead reads the whole file in 8 MiB reads, with one goroutine front to
// back or with several taking chunks in turn, and returns GB/s.
func rawRead(b *testing.B, path string, direct bool, workers int) float64 {
	open := os.Open
	if direct {
		open = openDirect
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 8 << 20
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		f, err := open(path)
		if err != nil {
			b.Skip(err)
		}
		defer f.Close()
		wg.Go(func() {
			buf := alignedBytes(chunk)
			for {
				off := next.Add(chunk) - chunk
				if off >= st.Size() {
					return
				}
				if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(st.Size()) / time.Since(start).Seconds() / 1e9
}

// BenchmarkPagerLoad measures how fast the pager reads experts that miss
// (10 Coder-Next experts per Resolve, as one token's routes when nothing
// hits, and 3 and 1, the misses of a decode step at 70% and 90% hit rates)
// with several IO pool sizes, against plain reads of the same file in the
// same run: sequential (one reader, 8 MiB reads, like dd) and parallel
// (8 readers). Buffered reads of a file just written come from the page
// cache (both numbers are then memory copies); O_DIRECT reads come from the
// device. x-seq is the acceptance ratio of issue 13 (>= 0.8).
func BenchmarkPagerLoad(b *testing.B) {
	const layers, experts, capacity = 4, 64, 20
	path, specs := writeBenchModel(b, b.TempDir(), layers, experts)
	type mode struct {
		name            string
		direct          bool
		misses, workers int
		advise, cold    bool // cold: the file's pages are dropped from the page cache before each Resolve
	}
	modes := []mode{{name: "buffered/10-misses", misses: 10}}
	for _, advise := range []bool{false, true} {
		modes = append(modes, mode{name: fmt.Sprintf("buffered-cold/3-misses/advise-%v", advise), misses: 3, advise: advise, cold: true})
	}
	for _, misses := range []int{10, 3, 1} {
		for _, workers := range []int{8, 16, 32} {
			modes = append(modes, mode{name: fmt.Sprintf("direct/%d-misses/%d-workers", misses, workers), direct: true, misses: misses, workers: workers})
		}
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			seq := rawRead(b, path, mode.direct, 1)
			par := rawRead(b, path, mode.direct, 8)
			p, err := New(Config{Layers: specs, Capacity: capacity, DirectIO: mode.direct, IOWorkers: mode.workers, ReadAhead: mode.advise})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if mode.direct && p.Stats().DirectIO != "on" {
				b.Skip(p.Stats().DirectIO)
			}
			r := rand.New(rand.NewPCG(1, 2))
			ids := make([]int32, mode.misses)
			slots := make([]int32, mode.misses)
			l := 0
			for b.Loop() {
				l = (l + 1) % layers
				// Experts that are not resident: every one is a miss.
				table := p.Table(l)
				for i := 0; i < mode.misses; {
					e := int32(r.IntN(experts))
					if table[e] < 0 && !containsID(ids[:i], e) {
						ids[i] = e
						i++
					}
				}
				if mode.cold {
					b.StopTimer()
					dropCache(b, path)
					b.StartTimer()
				}
				if err := p.Resolve(l, ids, slots); err != nil {
					b.Fatal(err)
				}
			}
			st := p.Stats()
			b.ReportMetric(st.ReadGBps, "GB/s")
			b.ReportMetric(seq, "seq-GB/s")
			b.ReportMetric(par, "par8-GB/s")
			b.ReportMetric(st.ReadGBps/seq, "x-seq")
			b.ReportMetric(st.ReadGBps/par, "x-par8")
		})
	}
}
