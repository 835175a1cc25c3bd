package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// TestLogitsAndGenerateMatchReference: the CLI gives the numbers the model
// tests check, for a quantized MLX and a Hugging Face fixture.
func TestLogitsAndGenerateMatchReference(t *testing.T) {
	for _, name := range []string{"qwen3_moe-4bit", "qwen3_moe-hf-bf16", "qwen3_next-4bit"} {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			ref := fixture.LoadReference(t, dir)
			var out, errOut strings.Builder
			p := ref.Prompts[1]
			// The reference is float32 throughout: so is the KV cache here
			// (half precision moves these logits by about 2e-3, BENCHMARKS.md
			// "KV cache").
			if code := run([]string{"logits", "--model", dir, "--kv-bits", "32", "--float-activations", "--ids", joinIDs(p.IDs)}, &out, &errOut); code != 0 {
				t.Fatalf("logits exited %d: %s", code, errOut.String())
			}
			var got struct {
				LastLogits []float32 `json:"last_logits"`
			}
			if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i := range p.LastLogits {
				worst = math.Max(worst, math.Abs(float64(got.LastLogits[i]-p.LastLogits[i])))
			}
			if len(got.LastLogits) != len(p.LastLogits) || worst > 1e-3 {
				t.Fatalf("logits differ from the reference by %g", worst)
			}

			generateGreedy(t, ref, "--model", dir, "--policy", "exact", "--capacity", "4")
		})
	}
}

// TestBadInputExitsOne: bad input is an error and exit code 1, not a panic.
func TestBadInputExitsOne(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	empty := t.TempDir()
	badConfig := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	os.WriteFile(filepath.Join(badConfig, "config.json"), []byte(`{"model_type": "qwen3_moe"`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logits", "--model", empty, "--ids", "1,2"}, "config.json"},
		{[]string{"logits", "--model", badConfig, "--ids", "1,2"}, "not a JSON object"},
		{[]string{"logits", "--model", dir, "--ids", "1,x"}, "not an integer"},
		{[]string{"logits", "--model", dir, "--ids", "1,99999"}, "outside the vocabulary"},
		{[]string{"generate", "--model", dir}, "no prompt"},
		{[]string{"generate", "--model", dir, "--prompt", "hi", "--policy", "sometimes"}, "policy"},
		{[]string{"generate", "--model", dir, "--prompt", "hi", "--memory", "lots"}, "--memory"},
		{[]string{"nll", "--model", dir, "--ids-file", filepath.Join(empty, "missing.json")}, "missing.json"},
	} {
		var out, errOut strings.Builder
		code := run(tc.args, &out, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 mentioning %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// TestTokenize: the tokenize command needs only the tokenizer files and
// prints the Hugging Face ids; --file takes the file's exact bytes.
func TestTokenize(t *testing.T) {
	dir, _ := filepath.Abs("../../tokenizer/testdata/qwen3")
	var out, errOut strings.Builder
	if code := run([]string{"tokenize", "--model", dir, "Hello world"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != "[9707,1879]" {
		t.Fatalf("tokenize printed %s, want [9707,1879]", got)
	}
	file := filepath.Join(t.TempDir(), "text")
	os.WriteFile(file, []byte("Hello world\n"), 0o644)
	out.Reset()
	if code := run([]string{"tokenize", "--model", dir, "--file", file}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != "[9707,1879,198]" {
		t.Fatalf("tokenize --file printed %s, want [9707,1879,198] (the newline kept)", got)
	}
}

// TestGzippedTestdataModel: --model can point at testdata/ directly, whose
// shards are gzip-compressed; they are unpacked once into the cache.
func TestGzippedTestdataModel(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := filepath.Join(fixture.Root(), "fixtures", "qwen3_moe-4bit")
	ref := fixture.LoadReference(t, fixture.Dir(t, "fixtures/qwen3_moe-4bit"))
	p := ref.Prompts[0]
	for range 2 { // unpack, then reuse
		var out, errOut strings.Builder
		if code := run([]string{"logits", "--model", dir, "--kv-bits", "32", "--float-activations", "--ids", joinIDs(p.IDs)}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		var got struct {
			LastLogits []float32 `json:"last_logits"`
		}
		if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
			t.Fatal(err)
		}
		for i := range p.LastLogits {
			if math.Abs(float64(got.LastLogits[i]-p.LastLogits[i])) > 1e-3 {
				t.Fatalf("logit %d: %g, reference %g", i, got.LastLogits[i], p.LastLogits[i])
			}
		}
	}
}

func TestBench(t *testing.T) {
	var out, errOut strings.Builder
	small := []string{"bench", "--seconds", "0.01", "--dram-mib", "16", "--experts", "12"}
	if code := run(small, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"executor cpu", "dram_read", "matvec_q4", "moe_q4", "copy", "qmv 4-bit", "qmm 8-bit"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("bench output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(append(small, "--json"), &out, &errOut); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut.String())
	}
	kernels := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r struct {
			Kernel, Shape string
			Threads       int
			GBps          *float64 `json:"gbps"`
			GFLOPS        *float64 `json:"gflops"`
			OfDRAM        *float64 `json:"of_dram"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("--json line %q: %v", line, err)
		}
		if r.Threads < 1 || r.Shape == "" || r.GBps == nil || r.GFLOPS == nil || r.OfDRAM == nil {
			t.Fatalf("--json line %q lacks a field", line)
		}
		kernels[r.Kernel] = true
	}
	for _, want := range []string{"dram_read", "matvec_q4", "matvec_q8", "moe_q4", "gemm_q4", "attention_decode"} {
		if !kernels[want] {
			t.Fatalf("--json output lacks kernel %q:\n%s", want, out.String())
		}
	}
}

// TestBenchKernelsAndProfile: --kernels keeps dram_read and the matching
// lines only, --cpuprofile writes a profile, a bad pattern is an error.
func TestBenchKernelsAndProfile(t *testing.T) {
	var out, errOut strings.Builder
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	args := []string{"bench", "--seconds", "0.01", "--dram-mib", "16", "--experts", "12", "--json", "--kernels", "^moe_q4$", "--cpuprofile", prof}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r struct{ Kernel string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("--json line %q: %v", line, err)
		}
		names = append(names, r.Kernel)
	}
	if strings.Join(names, ",") != "dram_read,moe_q4" {
		t.Fatalf("--kernels ^moe_q4$ measured %q, want dram_read and moe_q4", names)
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Fatalf("--cpuprofile wrote no profile: %v", err)
	}
	errOut.Reset()
	if code := run([]string{"bench", "--kernels", "("}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--kernels") {
		t.Fatalf("a bad --kernels pattern: exit %d, %q", code, errOut.String())
	}
}
