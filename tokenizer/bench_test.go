package tokenizer

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchCorpusSize is the size of the encode benchmark's text.
const benchCorpusSize = 1_000_000

// benchCorpus returns ~1 MB of mixed prose and source code: the Go
// specification and memory model (HTML prose with code), Go standard
// library sources (code with comments) from this machine's GOROOT, and the
// multilingual strings of the Qwen3 golden file. The text is read at run
// time, not stored in the repository. When TOKENIZER_BENCH_CORPUS_OUT is
// set, the text is also written there (scripts/tokenizer-bench/bench.js
// times the Rust library on the same text).
func benchCorpus(tb testing.TB) string {
	tb.Helper()
	root := runtime.GOROOT()
	var b strings.Builder
	for _, f := range []string{"doc/go_spec.html", "doc/go_mem.html"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			tb.Skipf("benchmark corpus: %v", err)
		}
		b.Write(data)
	}
	g := readGolden(tb, "qwen3")
	for _, c := range g.Encode {
		b.WriteString(c.Text)
		b.WriteByte('\n')
	}
	var files []string
	for _, dir := range []string{"bufio", "bytes", "strings", "fmt", "encoding/json", "net/http"} {
		_ = filepath.WalkDir(filepath.Join(root, "src", dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
				files = append(files, p)
			}
			return nil
		})
	}
	slices.Sort(files)
	for _, f := range files {
		if b.Len() >= benchCorpusSize {
			break
		}
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		b.Write(data)
	}
	if b.Len() < benchCorpusSize {
		tb.Skipf("benchmark corpus: only %d bytes under %s", b.Len(), root)
	}
	text := b.String()[:benchCorpusSize]
	text = strings.ToValidUTF8(text, "")
	if out := os.Getenv("TOKENIZER_BENCH_CORPUS_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return text
}

// BenchmarkEncode measures single-goroutine encode throughput on the
// corpus, in MB/s: "cached" with the piece cache warm (as in a
// long-running server), "nocache" with it cleared before every pass. The
// baseline, measured in the same run, is the same tokenizer with its
// pre-tokenizer regexes run by regexp2 instead of the hand-coded matchers;
// x-regexp2 is the speed-up over it, per CPU second where the platform
// measures CPU time (the machines are shared and noisy), else per second.
func BenchmarkEncode(b *testing.B) {
	text := benchCorpus(b)
	for _, name := range []string{"qwen3", "deepseek_v3"} {
		tk := testTokenizer(b, name)
		slow := withRegexp2(b, tk)
		for _, mode := range []string{"cached", "nocache"} {
			var baseline float64
			b.Run(name+"/"+mode+"/regexp2", func(b *testing.B) {
				baseline = encodeMBs(b, slow, text, mode == "cached")
			})
			b.Run(name+"/"+mode, func(b *testing.B) {
				b.ReportMetric(encodeMBs(b, tk, text, mode == "cached")/baseline, "x-regexp2")
			})
		}
	}
}

// encodeMBs runs the benchmark loop and reports the throughput per CPU
// second of the process (cpu-MB/s) where the platform measures it, besides
// the usual MB/s. It returns the former if there is one, else the latter.
func encodeMBs(b *testing.B, tk *Tokenizer, text string, cached bool) float64 {
	b.SetBytes(int64(len(text)))
	tk.Encode(text) // warm the cache (and the pools)
	var total, cpu time.Duration
	cpuOK := true
	for b.Loop() {
		if !cached {
			b.StopTimer()
			tk.cache.clear()
			b.StartTimer()
		}
		c0, ok0 := processCPU()
		t0 := time.Now()
		tk.Encode(text)
		total += time.Since(t0)
		c1, ok1 := processCPU()
		cpu += c1 - c0
		cpuOK = cpuOK && ok0 && ok1
	}
	mb := float64(len(text)) * float64(b.N) / 1e6
	if cpuOK && cpu > 0 {
		b.ReportMetric(mb/cpu.Seconds(), "cpu-MB/s")
		return mb / cpu.Seconds()
	}
	return mb / total.Seconds()
}

// withRegexp2 returns a copy of tk whose Split stages use regexp2 even for
// the hand-coded patterns.
func withRegexp2(tb testing.TB, tk *Tokenizer) *Tokenizer {
	tb.Helper()
	slow := &Tokenizer{norm: tk.norm, model: tk.model, dec: tk.dec, added: tk.added, idToTok: tk.idToTok, special: tk.special}
	for _, st := range tk.pre {
		if sp, ok := st.(*splitStage); ok {
			if pattern := handCodedPattern(sp.m); pattern != "" {
				re, err := compileRegexp2(pattern)
				if err != nil {
					tb.Fatal(err)
				}
				st = &splitStage{re, sp.behavior, sp.invert}
			}
		}
		slow.pre = append(slow.pre, st)
	}
	return slow
}

// handCodedPattern returns the pattern m implements if it is hand-coded.
func handCodedPattern(m matcher) string {
	for pattern, h := range handCoded {
		if h == m {
			return pattern
		}
	}
	return ""
}
