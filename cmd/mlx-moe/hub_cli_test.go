package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/hub/hubtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

const hubModel = "test-org/qwen3-moe-4bit"

// fakeHubEnv publishes the qwen3_moe-4bit fixture on a fake Hub and points
// the Hugging Face environment at it and at an empty cache in a temporary
// directory; it returns the hub, the cache and the fixture's reference.
func fakeHubEnv(t *testing.T) (*hubtest.Hub, string, *fixture.Reference) {
	t.Helper()
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	h := hubtest.New(t)
	if _, err := h.AddDir(hubModel, dir); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	for k, v := range map[string]string{
		"HF_HUB_CACHE": cache, "HF_HOME": t.TempDir(), "XDG_CACHE_HOME": t.TempDir(), "HF_ENDPOINT": h.Server.URL,
		"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "",
	} {
		t.Setenv(k, v)
	}
	return h, cache, fixture.LoadReference(t, dir)
}

// generateGreedy runs generate with args and checks the fixture's
// reference greedy tokens.
func generateGreedy(t *testing.T, ref *fixture.Reference, args ...string) string {
	t.Helper()
	g := ref.Greedy
	args = append(args, "--prompt-ids", joinIDs(g.PromptIDs), "--max-tokens", fmt.Sprint(len(g.NewIDs)), "--ignore-eos", "--json")
	var out, errOut strings.Builder
	if code := run(append([]string{"generate"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("generate %v exited %d: %s", args, code, errOut.String())
	}
	var gen struct {
		IDs []int32 `json:"ids"`
	}
	if err := json.Unmarshal([]byte(out.String()), &gen); err != nil {
		t.Fatal(err)
	}
	for i, want := range g.NewIDs {
		if gen.IDs[i] != want {
			if g.Gaps[i] < 1e-3 {
				break
			}
			t.Fatalf("generated token %d is %d, reference %d", i, gen.IDs[i], want)
		}
	}
	return errOut.String()
}

// TestPullThenGenerate: a pulled model loads with --model ORG/NAME and as
// the first argument, generates the fixture's reference tokens, and is
// listed and removed.
func TestPullThenGenerate(t *testing.T) {
	h, cache, ref := fakeHubEnv(t)
	code, out, errOut := runCLI("pull", hubModel)
	if code != 0 {
		t.Fatalf("pull exited %d: %s", code, errOut)
	}
	snap := strings.TrimSpace(out)
	if !strings.HasPrefix(snap, filepath.Join(cache, "models--test-org--qwen3-moe-4bit", "snapshots")) {
		t.Fatalf("pull printed %q, want a snapshot in %s", snap, cache)
	}
	if !strings.Contains(errOut, "pulling "+hubModel) || !strings.Contains(errOut, "model.safetensors") {
		t.Errorf("pull progress: %q", errOut)
	}
	if strings.ContainsFunc(errOut, func(r rune) bool { return r < ' ' && r != '\n' }) {
		t.Errorf("progress into a pipe has control characters: %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(snap, "reference.json")); err == nil {
		t.Error("pull fetched reference.json, which the engine does not need")
	}
	served := h.BytesServed.Load()
	generateGreedy(t, ref, "--model", hubModel)
	generateGreedy(t, ref, hubModel)
	if h.BytesServed.Load() != served || h.APICalls.Load() != 1 {
		t.Errorf("loading a cached model used the network: %d bytes, %d API calls", h.BytesServed.Load()-served, h.APICalls.Load())
	}

	code, out, _ = runCLI("list")
	if code != 0 || !strings.Contains(out, hubModel) || !strings.Contains(out, "qwen3_moe") || !strings.Contains(out, "4-bit") || !strings.Contains(out, "ready") {
		t.Fatalf("list (exit %d):\n%s", code, out)
	}
	code, out, errOut = runCLI("rm", hubModel)
	if code != 0 || !strings.Contains(out, "deleted "+hubModel) {
		t.Fatalf("rm exited %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(snap); err == nil {
		t.Fatal("rm left the snapshot")
	}
	if code, _, errOut = runCLI("rm", hubModel); code == 0 || !strings.Contains(errOut, "not in the Hugging Face cache") {
		t.Fatalf("rm of a model not there: exit %d, %s", code, errOut)
	}
}

// TestFirstUseDownloads: a hub id that is not cached is downloaded by
// generate, unless --no-download or HF_HUB_OFFLINE, whose errors name
// `mlx-moe pull`.
func TestFirstUseDownloads(t *testing.T) {
	h, _, ref := fakeHubEnv(t)
	code, _, errOut := runCLI("generate", hubModel, "--no-download", "hi")
	if code == 0 || !strings.Contains(errOut, "mlx-moe pull "+hubModel) || !strings.Contains(errOut, "--no-download") {
		t.Fatalf("--no-download: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI("serve", hubModel, "--no-download")
	if code == 0 || !strings.Contains(errOut, "mlx-moe pull "+hubModel) {
		t.Fatalf("serve --no-download: exit %d, %s", code, errOut)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	code, _, errOut = runCLI("generate", "--model", hubModel, "hi")
	if code == 0 || !strings.Contains(errOut, "mlx-moe pull "+hubModel) || !strings.Contains(errOut, "HF_HUB_OFFLINE") {
		t.Fatalf("offline: exit %d, %s", code, errOut)
	}
	if h.APICalls.Load() != 0 {
		t.Fatal("the Hub was asked while downloads were off")
	}
	t.Setenv("HF_HUB_OFFLINE", "")
	errOut = generateGreedy(t, ref, hubModel)
	if !strings.Contains(errOut, "pulling "+hubModel) {
		t.Errorf("first use showed no download progress: %q", errOut)
	}
	if h.BytesServed.Load() == 0 {
		t.Error("nothing was downloaded")
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	generateGreedy(t, ref, hubModel) // now cached: offline works
}

func TestPullRefusesUnsupportedModels(t *testing.T) {
	h, _, _ := fakeHubEnv(t)
	h.Add("test-org/llama", map[string][]byte{"config.json": []byte(`{"model_type": "llama"}`), "model.safetensors": make([]byte, 100_000)})
	code, _, errOut := runCLI("pull", "--quiet", "test-org/llama")
	if code == 0 || !strings.Contains(errOut, `model_type "llama" is not supported`) {
		t.Fatalf("pull of a llama: exit %d, %s", code, errOut)
	}
	if h.BytesServed.Load() > 1000 {
		t.Errorf("%d bytes fetched for a model the engine cannot run", h.BytesServed.Load())
	}
	for _, tc := range []struct{ args, says string }{
		{"pull", "expected one model id"},
		{"pull not-a-model-id", "expected ORG/NAME"},
		{"pull test-org/missing", "repository not found"},
		{"serve a b", "unexpected arguments"},
		{"rm", "expected the model to delete"},
	} {
		code, _, errOut := runCLI(strings.Fields(tc.args)...)
		if code == 0 || !strings.Contains(errOut, tc.says) {
			t.Errorf("%s: exit %d, %q; want it to say %q", tc.args, code, errOut, tc.says)
		}
	}
}

// TestExistingHFCache: a model that huggingface_hub put in the cache
// (symlinked snapshot, refs/main) runs as ORG/NAME without the network.
func TestExistingHFCache(t *testing.T) {
	h, cache, ref := fakeHubEnv(t)
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	r, err := h.AddDir("other-org/cached", dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := hubtest.WriteCache(cache, "other-org/cached", r); err != nil {
		t.Fatal(err)
	}
	h.Server.Close() // no Hub: everything must come from the cache
	generateGreedy(t, ref, "other-org/cached")
	generateGreedy(t, ref, "--model", "other-org/cached@"+r.Commit)
}
