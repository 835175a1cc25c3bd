package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// runCLI runs the command line and returns its exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// withCache points the cache (warm-start state, the unpacked default model)
// at a fresh temporary directory and returns it.
func withCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	return dir
}

// editedFixture copies fixture name and sets config.json keys.
func editedFixture(t *testing.T, name string, set map[string]any) string {
	t.Helper()
	dir := fixture.Dir(t, "fixtures/"+name)
	fixture.EditConfig(t, dir, func(c map[string]any) {
		for k, v := range set {
			c[k] = v
		}
	})
	return dir
}

// TestFlagErrors: each bad flag value is exit status 1 and a message naming
// the flag, before any model is loaded; the values match what the server
// rejects in a request.
func TestFlagErrors(t *testing.T) {
	withCache(t)
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	gen := func(args ...string) []string {
		return append([]string{"generate", "--model", dir, "--prompt", "hi"}, args...)
	}
	topK0 := editedFixture(t, "qwen3_moe-4bit", map[string]any{"num_experts_per_tok": 0})
	negEps := editedFixture(t, "qwen3_moe-4bit", map[string]any{"rms_norm_eps": -1})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{gen("--capacity", "-3"), "--capacity -3: expected a positive number of expert slots"},
		{gen("--context", "-5"), "--context -5: expected a number of tokens"},
		{gen("--context", "9999999999"), "--context 9999999999: expected a number of tokens from 1 to"},
		{gen("--pin", "-1"), "--pin -1"},
		{gen("--kv-bits", "3"), "--kv-bits 3: expected 16, 8 or 4"},
		{[]string{"logits", "--model", dir, "--ids", "1,2", "--kv-bits", "0"}, "--kv-bits 0"},
		{[]string{"generate", "--model", dir, "--prompt-ids", "1,2,3,4,5,6", "--context", "4"}, "context length exceeded: prompt of 6 tokens, context is 4 (raise --context"},
		{gen("--device", "gpu"), `--device "gpu": expected cpu or metal`},
		{gen("--policy", "sometimes"), `--policy "sometimes"`},
		{gen("--memory", "0GB"), "--memory 0GB: expected a positive size"},
		{gen("--temperature", "NaN"), "--temperature NaN: expected a number from 0 to 2"},
		{gen("--temperature", "-1"), "--temperature -1: expected a number from 0 to 2"},
		{gen("--top-p", "5"), "--top-p 5: expected a number from 0 to 1"},
		{gen("--min-p", "7"), "--min-p 7: expected a number from 0 to 1"},
		{gen("--repetition-penalty", "-2"), "--repetition-penalty -2: expected a positive number"},
		{gen("--repetition-penalty", "0"), "--repetition-penalty 0: expected a positive number"},
		{gen("--top-k", "-1"), "--top-k -1"},
		{gen("--max-tokens", "-1"), "--max-tokens -1: expected a positive number"},
		{gen("--profile", "/nonexistent/profile.json"), "--profile: stat /nonexistent/profile.json"},
		{gen("--prompt-ids", "1,2"), "give the prompt once"},
		{[]string{"generate", "--model", dir, "--prompt-ids", "1,2", "--chat"}, "--chat wraps a text prompt"},
		{[]string{"generate", "--model", dir, "--prompt-file", "/nonexistent/prompt.txt"}, "--prompt-file: open /nonexistent/prompt.txt"},
		{[]string{"generate", "--model", dir, "--prompt-file", os.DevNull}, "the prompt is empty"},
		{gen("--capacity", "1"), "--capacity 1 is below the model's top-k: every token routes to 4 experts per layer (num_experts_per_tok)"},
		{[]string{"logits", "--model", dir, "--ids", "1,2", "--capacity", "-3"}, "--capacity -3"},
		{[]string{"serve", "--model", dir, "--port", "0", "--context", "-5"}, "--context -5"},
		{[]string{"serve", "--model", dir, "--port", "0", "--max-tokens", "-1"}, "--max-tokens -1"},
		{[]string{"serve", "--model", dir, "--port", "0", "--max-queue", "-1"}, "--max-queue -1: expected at least 1"},
		{[]string{"serve", "--model", dir, "--port", "0", "--parallel", "0"}, "--parallel 0: expected at least 1"},
		{[]string{"serve", "--model", dir, "--port", "0", "--prefill-chunk", "-1"}, "--prefill-chunk -1: expected at least 1"},
		{[]string{"serve", "--model", dir, "--port", "0", "--prefill-pace", "0.5"}, "--prefill-pace 0.5: expected 0 (off) or a number above 1"},
		{[]string{"serve", "--model", dir, "--port", "0", "--shutdown-grace", "-1s"}, "--shutdown-grace -1s"},
		{[]string{"generate", "--model", topK0, "--prompt", "hi"}, "num_experts_per_tok (top-k) must be between 1 and the number of experts 16, got 0"},
		{[]string{"generate", "--model", negEps, "--prompt", "hi"}, "rms_norm_eps must be positive, got -1"},
		{[]string{"synth", "--out", filepath.Join(t.TempDir(), "s"), "--scale", "0"}, "--scale 0: expected a number above 0 and at most 1"},
		{[]string{"synth", "--out", filepath.Join(t.TempDir(), "s"), "--scale", "NaN"}, "--scale NaN"},
		{[]string{"synth", "--out", filepath.Join(t.TempDir(), "s"), "--scale", "2"}, "--scale 2"},
		{[]string{"synth", "--out", filepath.Join(t.TempDir(), "s"), "--vocab", "-1"}, "--vocab -1"},
	} {
		code, _, stderr := runCLI(tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "panic") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 mentioning %q", tc.args[:min(len(tc.args), 6)], code, stderr, tc.want)
		}
	}
}

// generateIDs runs generate --json and returns the new token ids.
func generateIDs(t *testing.T, args ...string) ([]int32, string) {
	t.Helper()
	code, stdout, stderr := runCLI(append([]string{"generate", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("generate %v: exit %d: %s", args, code, stderr)
	}
	var out struct {
		IDs []int32 `json:"ids"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("generate %v printed %q: %v", args, stdout, err)
	}
	return out.IDs, stderr
}

// TestPromptFromFileAndStdin: --prompt-file takes a file's exact bytes and
// - reads standard input; both give what --prompt gives.
func TestPromptFromFileAndStdin(t *testing.T) {
	withCache(t)
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	text := "Hello world\nand more\n"
	file := filepath.Join(t.TempDir(), "prompt.txt")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--model", dir, "--max-tokens", "6", "--ignore-eos"}
	want, _ := generateIDs(t, append(common, "--prompt", text)...)
	got, _ := generateIDs(t, append(common, "--prompt-file", file)...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("--prompt-file gave %v, --prompt %v", got, want)
	}
	stdin = strings.NewReader(text)
	defer func() { stdin = os.Stdin }()
	got, _ = generateIDs(t, append(common, "--prompt-file", "-")...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("--prompt-file - gave %v, --prompt %v", got, want)
	}
}

var seedLine = regexp.MustCompile(`seed: (\d+)`)

// TestSamplingSeed: without --seed each sampled run gets a fresh seed,
// which --verbose prints and --seed repeats.
func TestSamplingSeed(t *testing.T) {
	withCache(t)
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	common := []string{"--model", dir, "--prompt-ids", "1,2,3", "--max-tokens", "12", "--ignore-eos", "--temperature", "1", "--verbose"}
	first, stderr1 := generateIDs(t, common...)
	_, stderr2 := generateIDs(t, common...)
	m1, m2 := seedLine.FindStringSubmatch(stderr1), seedLine.FindStringSubmatch(stderr2)
	if m1 == nil || m2 == nil {
		t.Fatalf("--verbose printed no seed:\n%s", stderr1)
	}
	if m1[1] == m2[1] {
		t.Errorf("two runs without --seed both used seed %s", m1[1])
	}
	again, _ := generateIDs(t, append(common, "--seed", m1[1])...)
	if fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("--seed %s gave %v, the run that printed it %v", m1[1], again, first)
	}
}

// TestMaxTokensZero: --max-tokens 0 generates until the context is full,
// as its help says.
func TestMaxTokensZero(t *testing.T) {
	withCache(t)
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	ids, _ := generateIDs(t, "--model", dir, "--prompt-ids", "1,2,3", "--context", "40", "--max-tokens", "0", "--ignore-eos")
	if len(ids) != 40-3 {
		t.Errorf("--max-tokens 0 with a 40-token context and a 3-token prompt generated %d tokens, want 37", len(ids))
	}
	code, _, help := runCLI("generate", "--help")
	if code != 0 || !strings.Contains(help, "most new tokens (0: until end-of-sequence or the context is full) (default 128)") {
		t.Errorf("generate --help: exit %d; the --max-tokens help does not say what 0 and the default do:\n%s", code, help)
	}
}

// TestContextBeyondTrainedLength warns and still runs.
func TestContextBeyondTrainedLength(t *testing.T) {
	withCache(t)
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	_, stderr := generateIDs(t, "--model", dir, "--prompt-ids", "1,2", "--max-tokens", "1", "--context", "2000")
	if !strings.Contains(stderr, "warning: --context 2000 exceeds the 1024 positions the model was trained for") {
		t.Errorf("no warning for --context 2000 on a 1024-position model:\n%s", stderr)
	}
}

// TestEveryCommandDefaultsToEmbeddedModel: tokenize, template, logits and
// nll run without --model, like generate, profile and serve.
func TestEveryCommandDefaultsToEmbeddedModel(t *testing.T) {
	withCache(t)
	req := filepath.Join(t.TempDir(), "req.json")
	os.WriteFile(req, []byte(`{"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true}`), 0o644)
	ids := filepath.Join(t.TempDir(), "ids.json")
	os.WriteFile(ids, []byte(`[1, 2, 3, 4]`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tokenize", "def f():"}, "["},
		{[]string{"template", "--request", req}, "hi"},
		{[]string{"logits", "--ids", "1,2,3"}, `"last_logits"`},
		{[]string{"nll", "--ids-file", ids}, `"mean_nll"`},
	} {
		code, stdout, stderr := runCLI(tc.args...)
		if code != 0 || !strings.Contains(stdout, tc.want) {
			t.Errorf("%v without --model: exit %d, stdout %.80q, stderr %q", tc.args, code, stdout, stderr)
		}
	}
}

// TestUnwritableCacheExplainsUnpacking: the default model needs to be
// unpacked; when the cache cannot be written the message says so.
func TestUnwritableCacheExplainsUnpacking(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, nil, 0o644)
	t.Setenv("XDG_CACHE_HOME", notADir) // even root cannot create a directory under a file
	for _, args := range [][]string{{"generate", "hi"}, {"tokenize", "hi"}} {
		code, _, stderr := runCLI(args...)
		if code != 1 || !strings.Contains(stderr, "without --model the embedded "+defaultmodel.Name+" is used, which must first be unpacked into the cache directory") {
			t.Errorf("%v with an unwritable cache: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestSynthChecksFreeSpace: synth refuses before writing anything when the
// disk has less room than the checkpoint needs.
func TestSynthChecksFreeSpace(t *testing.T) {
	saved := freeSpace
	freeSpace = func(string) int64 { return 1000 }
	defer func() { freeSpace = saved }()
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runCLI("synth", "--out", out, "--scale", "0.0625", "--vocab", "2048")
	if code != 1 || !regexp.MustCompile(`the checkpoint needs \d+\.\d+ [MG]B, but only 1000 B is free there`).MatchString(stderr) {
		t.Errorf("synth on a full disk: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("synth on a full disk created %s (%v)", out, err)
	}
}

// TestProfileFoundNextToModel: a profile in the model's profiles/ is used;
// one in the working directory's profiles/ is not; --pin on a model that
// is fully resident is reported as having no effect.
func TestProfileFoundNextToModel(t *testing.T) {
	withCache(t)
	base, err := modelDir("")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join("..", "..", "profiles", defaultmodel.Name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	withProfile := filepath.Join(t.TempDir(), defaultmodel.Name)
	os.MkdirAll(filepath.Join(withProfile, "profiles"), 0o755)
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		os.Symlink(filepath.Join(base, e.Name()), filepath.Join(withProfile, e.Name()))
	}
	profile := filepath.Join(withProfile, "profiles", defaultmodel.Name+".json")
	os.WriteFile(profile, shipped, 0o644)

	paged := []string{"--policy", "exact", "--capacity", "8", "--prompt-ids", "1,2", "--max-tokens", "1", "--no-warm-start"}
	_, stderr := generateIDs(t, append([]string{"--model", withProfile}, paged...)...)
	if !strings.Contains(stderr, "experts: using profile "+profile) {
		t.Errorf("the profile next to the model was not used:\n%s", stderr)
	}

	cwd := t.TempDir()
	os.MkdirAll(filepath.Join(cwd, "profiles"), 0o755)
	os.WriteFile(filepath.Join(cwd, "profiles", defaultmodel.Name+".json"), shipped, 0o644)
	t.Chdir(cwd)
	_, stderr = generateIDs(t, append([]string{"--model", base}, paged...)...)
	if strings.Contains(stderr, "using profile") {
		t.Errorf("a profile in the working directory was used:\n%s", stderr)
	}

	_, stderr = generateIDs(t, "--model", withProfile, "--policy", "resident", "--pin", "2", "--prompt-ids", "1,2", "--max-tokens", "1")
	if !strings.Contains(stderr, "every expert is resident, so --profile and --pin have no effect") {
		t.Errorf("--pin on a resident model was silently ignored:\n%s", stderr)
	}
}

// TestTokenizeStdin: tokenize --file - reads standard input's exact bytes.
func TestTokenizeStdin(t *testing.T) {
	withCache(t)
	dir, _ := filepath.Abs("../../tokenizer/testdata/qwen3")
	stdin = strings.NewReader("Hello world\n")
	defer func() { stdin = os.Stdin }()
	code, stdout, stderr := runCLI("tokenize", "--model", dir, "--file", "-")
	if code != 0 || strings.TrimSpace(stdout) != "[9707,1879,198]" {
		t.Errorf("tokenize --file -: exit %d, %q %s; want [9707,1879,198]", code, stdout, stderr)
	}
}
