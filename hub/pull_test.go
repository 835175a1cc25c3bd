package hub

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/hub/hubtest"
)

const repoID = "test-org/tiny-moe"

// publish puts a small model on a fake Hub: an LFS weights file of size
// weights, plain files, and files the engine does not need.
func publish(t *testing.T, weights int) (*hubtest.Hub, *hubtest.Repo) {
	t.Helper()
	h := hubtest.New(t)
	w := make([]byte, weights)
	rand.New(rand.NewSource(1)).Read(w)
	r := h.Add(repoID, map[string][]byte{
		"config.json":                  []byte(`{"model_type": "qwen3_moe"}`),
		"tokenizer.json":               []byte(`{"model": {}}`),
		"model.safetensors":            w,
		"README.md":                    []byte("# not needed"),
		"original/consolidated.pth":    []byte("not needed either"),
		"original/model.safetensors":   []byte("a second copy the engine does not read"),
		"generation_config.json":       []byte(`{}`),
		"model.safetensors.index.json": []byte(`{"weight_map": {"a": "model.safetensors"}}`),
	})
	return h, r
}

func newTestClient(t *testing.T, h *hubtest.Hub) *Client {
	return &Client{Endpoint: h.Server.URL, Cache: Cache{Dir: t.TempDir()}, RetryWait: time.Millisecond, Retries: 3}
}

func TestPullWritesTheHFCacheLayout(t *testing.T) {
	h, r := publish(t, 300_000)
	c := newTestClient(t, h)
	c.PartSize, c.Jobs = 64<<10, 3
	dir, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(c.Cache.Dir, "models--test-org--tiny-moe")
	if want := filepath.Join(repoDir, "snapshots", r.Commit); dir != want {
		t.Fatalf("snapshot %s, want %s", dir, want)
	}
	ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main"))
	if err != nil || string(ref) != r.Commit {
		t.Fatalf("refs/main = %q, %v; want %s", ref, err, r.Commit)
	}
	for name, data := range r.Files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		needed := !strings.HasPrefix(name, "original/") && name != "README.md"
		if !needed {
			if err == nil {
				t.Errorf("%s was downloaded though the engine does not need it", name)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %v, content equal %v", name, err, bytes.Equal(got, data))
		}
		etag := hubtest.GitOID(data)
		if hubtest.IsLFS(name) {
			etag = hubtest.SHA256(data)
		}
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || target != filepath.Join("..", "..", "blobs", etag) {
			t.Errorf("%s links to %q (%v), want ../../blobs/%s", name, target, err, etag)
		}
		if _, err := os.Stat(filepath.Join(c.Cache.Dir, ".locks", "models--test-org--tiny-moe", etag+".lock")); err != nil {
			t.Errorf("no lock file for %s: %v", name, err)
		}
	}
	if n := len(h.Ranges()); n < 300_000/(64<<10) {
		t.Errorf("the weights came in %d requests, want ranged parts of 64 KiB", n)
	}
	if m := h.MaxInFlight.Load(); m > 3 {
		t.Errorf("%d storage requests at once, want at most Jobs=3", m)
	}
	if h.AuthLeaked.Load() {
		t.Error("the storage host received the Authorization header")
	}
	// Pulled again: nothing is fetched. (A storage handler counts its
	// bytes after the client has them: wait for the last one to return
	// before taking the count.)
	for deadline := time.Now().Add(5 * time.Second); h.InFlight.Load() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	served := h.BytesServed.Load()
	if _, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"}); err != nil {
		t.Fatal(err)
	}
	if h.BytesServed.Load() != served {
		t.Errorf("a second pull fetched %d bytes again", h.BytesServed.Load()-served)
	}
	if got, err := c.Cache.Snapshot(ID{Repo: repoID, Revision: "main"}); err != nil || got != dir {
		t.Errorf("Snapshot = %q, %v", got, err)
	}
}

func TestPullWithoutRangesStreams(t *testing.T) {
	h, r := publish(t, 200_000)
	h.NoRanges = true
	c := newTestClient(t, h)
	c.PartSize = 32 << 10
	dir, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: r.Commit})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, r.Files["model.safetensors"]) {
		t.Fatal("weights differ")
	}
	if _, err := os.Stat(filepath.Join(c.Cache.RepoDir(repoID), "refs", r.Commit)); err == nil {
		t.Error("a commit revision was written to refs/")
	}
}

func TestPullResumesAnInterruptedDownload(t *testing.T) {
	const size, cut = 500_000, 123_457
	h, r := publish(t, size)
	c := newTestClient(t, h)
	c.PartSize = 1 << 30 // one stream
	id := ID{Repo: repoID, Revision: "main"}
	h.CutAfter["model.safetensors"] = cut
	// The first GET is cut; the retries find the host down.
	c.Retries = 1
	done := make(chan struct{})
	go func() {
		defer close(done)
		for h.BytesServed.Load() < cut {
			time.Sleep(100 * time.Microsecond)
		}
		h.SetDown(true)
	}()
	_, err := c.Pull(context.Background(), id)
	<-done
	if err == nil || !strings.Contains(err.Error(), "pull again to resume") {
		t.Fatalf("interrupted pull: %v", err)
	}
	blob := filepath.Join(c.Cache.RepoDir(repoID), "blobs", hubtest.SHA256(r.Files["model.safetensors"]))
	info, err := os.Stat(blob + ".incomplete")
	if err != nil || info.Size() != cut {
		t.Fatalf("partial blob: %v, %v bytes; want %d", err, info, cut)
	}
	h.SetDown(false)
	before := h.BytesServed.Load()
	if _, err := c.Pull(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(blob); !bytes.Equal(got, r.Files["model.safetensors"]) {
		t.Fatal("resumed weights differ")
	}
	ranges := h.Ranges()
	if last := ranges[len(ranges)-1]; last != "bytes=123457-" {
		t.Errorf("resumed with Range %q, want bytes=123457-", last)
	}
	weights := h.BytesServed.Load() - before + cut
	small := int64(0)
	for n, d := range r.Files {
		if !hubtest.IsLFS(n) {
			small += int64(len(d))
		}
	}
	// The weights were fetched once in all, plus at most one 1 MiB chunk.
	if weights-small > size+1<<20 {
		t.Errorf("%d bytes of weights fetched for a %d byte file", weights-small, size)
	}
}

func TestPullRetriesAStalledConnection(t *testing.T) {
	h, r := publish(t, 200_000)
	c := newTestClient(t, h)
	c.PartSize, c.StallTimeout = 1<<30, 200*time.Millisecond
	h.StallAfter["model.safetensors"] = 50_000
	dir, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, r.Files["model.safetensors"]) {
		t.Fatal("weights differ")
	}
	if ranges := h.Ranges(); ranges[len(ranges)-1] != "bytes=50000-" {
		t.Errorf("after the stall the download went on with %q, want bytes=50000-", ranges[len(ranges)-1])
	}
}

func TestPullRetriesBrokenParts(t *testing.T) {
	h, r := publish(t, 400_000)
	c := newTestClient(t, h)
	c.PartSize, c.Jobs = 50_000, 4
	h.CutAfter["model.safetensors"] = 10_000
	dir, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, r.Files["model.safetensors"]) {
		t.Fatal("weights differ")
	}
	if got := h.BytesServed.Load(); got > 400_000+50_000+10_000 {
		t.Errorf("%d bytes served, want at most the file and one part more", got)
	}
}

func TestPullDetectsACorruptedByte(t *testing.T) {
	h, r := publish(t, 100_000)
	h.Corrupt["model.safetensors"] = true
	c := newTestClient(t, h)
	_, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "model.safetensors") || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("corrupted download: %v", err)
	}
	blob := filepath.Join(c.Cache.RepoDir(repoID), "blobs", hubtest.SHA256(r.Files["model.safetensors"]))
	for _, p := range []string{blob, blob + ".incomplete"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was kept", p)
		}
	}
	// A corrupted plain file fails its git blob id. A hub of its own: the
	// first pull's other downloads may still be reading h.Corrupt.
	h, _ = publish(t, 100_000)
	h.Corrupt["tokenizer.json"] = true
	c = newTestClient(t, h)
	_, err = c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("corrupted tokenizer.json: %v", err)
	}
}

func TestPullErrorsSayWhatToDo(t *testing.T) {
	h, _ := publish(t, 1000)
	private := h.Add("test-org/private", map[string][]byte{"config.json": []byte(`{}`), "model.safetensors": []byte("x")})
	private.Token = "hf_secret"
	gated := h.Add("test-org/gated", map[string][]byte{"config.json": []byte(`{}`), "model.safetensors": []byte("x")})
	gated.Token, gated.Gated = "hf_secret", true
	c := newTestClient(t, h)
	for _, tc := range []struct {
		id, token string
		is        error
		says      string
	}{
		{"test-org/missing", "", ErrRepoNotFound, "HF_TOKEN"},
		{"test-org/missing", "hf_other", ErrRepoNotFound, "check the name"},
		{"test-org/private", "", ErrRepoNotFound, "huggingface-cli login"},
		{"test-org/gated", "", ErrGated, "accept its license at " + h.Server.URL + "/test-org/gated"},
		{repoID + "@v9", "", nil, `revision "v9" not found`},
		{repoID, hubtest.ExpiredToken, ErrGated, "invalid or expired"},
	} {
		c.Token = tc.token
		id, _ := ParseID(tc.id)
		_, err := c.Pull(context.Background(), id)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s (token %q): %v; want %v saying %q", tc.id, tc.token, err, tc.is, tc.says)
		}
	}
	c.Token = "hf_secret"
	for _, id := range []string{"test-org/private", "test-org/gated"} {
		if _, err := c.Pull(context.Background(), ID{Repo: id, Revision: "main"}); err != nil {
			t.Errorf("%s with its token: %v", id, err)
		}
	}
	if h.AuthLeaked.Load() {
		t.Error("the storage host received the token")
	}
}

func TestPullRetriesServerErrors(t *testing.T) {
	h, _ := publish(t, 1000)
	h.FailAPI = 2
	c := newTestClient(t, h)
	if _, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"}); err != nil {
		t.Fatal(err)
	}
	if n := h.APICalls.Load(); n != 3 {
		t.Errorf("%d API calls, want 2 failures and a success", n)
	}
	h.FailAPI = 100
	_, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "try again later") {
		t.Fatalf("persistent 500: %v", err)
	}
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	h, r := publish(t, 400_000)
	cache := t.TempDir()
	var wg sync.WaitGroup
	dirs, errs := make([]string, 2), make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{Endpoint: h.Server.URL, Cache: Cache{Dir: cache}, PartSize: 50_000, Jobs: 2}
			dirs[i], errs[i] = c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got, _ := os.ReadFile(filepath.Join(dirs[i], "model.safetensors")); !bytes.Equal(got, r.Files["model.safetensors"]) {
			t.Fatalf("pull %d: weights differ", i)
		}
	}
	var want int64
	for n, d := range r.Files {
		if !strings.HasPrefix(n, "original/") && n != "README.md" {
			want += int64(len(d))
		}
	}
	if got := h.BytesServed.Load(); got != want {
		t.Errorf("two pulls fetched %d bytes, want each file once (%d)", got, want)
	}
}

func TestOfflineUsesTheCacheOnly(t *testing.T) {
	h, _ := publish(t, 1000)
	c := newTestClient(t, h)
	c.Offline = true
	id := ID{Repo: repoID, Revision: "main"}
	if _, err := c.Pull(context.Background(), id); !errors.Is(err, ErrOffline) || !errors.Is(err, ErrNotCached) {
		t.Fatalf("offline, not cached: %v", err)
	}
	if h.APICalls.Load() != 0 {
		t.Fatal("offline mode asked the Hub")
	}
	c.Offline = false
	dir, err := c.Pull(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c.Offline = true
	calls := h.APICalls.Load()
	if got, err := c.Pull(context.Background(), id); err != nil || got != dir {
		t.Fatalf("offline, cached: %q, %v", got, err)
	}
	if h.APICalls.Load() != calls {
		t.Fatal("offline mode asked the Hub")
	}
}

func TestUnreachableHub(t *testing.T) {
	h, _ := publish(t, 10)
	c := newTestClient(t, h)
	h.Server.Close()
	_, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if !errors.Is(err, ErrNoNetwork) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE=1") {
		t.Fatalf("unreachable hub: %v", err)
	}
}

func TestUnsupportedConfigStopsBeforeWeights(t *testing.T) {
	h, _ := publish(t, 100_000)
	c := newTestClient(t, h)
	c.CheckConfig = func(cfg []byte) error { return errors.New(`model_type "llama" is not supported`) }
	_, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "llama") {
		t.Fatalf("unsupported: %v", err)
	}
	if n := h.BytesServed.Load(); n > 100 {
		t.Errorf("%d bytes fetched before the config was checked", n)
	}
}

func TestNotEnoughDiskSpace(t *testing.T) {
	h, _ := publish(t, 100_000)
	c := newTestClient(t, h)
	saved := diskFree
	diskFree = func(string) int64 { return 50_000 }
	defer func() { diskFree = saved }()
	_, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "HF_HUB_CACHE") {
		t.Fatalf("disk too small: %v", err)
	}
	if h.BytesServed.Load() != 0 {
		t.Error("fetched bytes though they could not fit")
	}
}

// TestExistingHFCacheIsUsed builds a cache the way huggingface_hub
// documents it (blobs, relative symlinks in snapshots, refs/main) and
// checks it is found, and that a pull of the same commit fetches nothing.
func TestExistingHFCacheIsUsed(t *testing.T) {
	h, r := publish(t, 1000)
	c := newTestClient(t, h)
	repoDir := filepath.Join(c.Cache.Dir, "models--test-org--tiny-moe")
	needed := &hubtest.Repo{Commit: r.Commit, Files: map[string][]byte{}}
	for name, data := range r.Files {
		if !strings.HasPrefix(name, "original/") && name != "README.md" {
			needed.Files[name] = data
		}
	}
	if err := hubtest.WriteCache(c.Cache.Dir, repoID, needed); err != nil {
		t.Fatal(err)
	}
	dir, err := c.Cache.Local(repoID)
	if err != nil || dir != filepath.Join(repoDir, "snapshots", r.Commit) {
		t.Fatalf("Local(%s) = %q, %v", repoID, dir, err)
	}
	if _, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"}); err != nil {
		t.Fatal(err)
	}
	if h.BytesServed.Load() != 0 || h.Gets.Load() != 0 {
		t.Errorf("a cached model was fetched again: %d bytes", h.BytesServed.Load())
	}
	list, err := c.Cache.List()
	if err != nil || len(list) != 1 || list[0].Repo != repoID || !list[0].Complete || list[0].Size == 0 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	freed, err := c.Cache.Remove(repoID)
	if err != nil || freed != list[0].Size {
		t.Fatalf("Remove freed %d, %v; want %d", freed, err, list[0].Size)
	}
	if _, err := c.Cache.Local(repoID); !errors.Is(err, ErrNotCached) {
		t.Fatalf("after Remove: %v", err)
	}
}

// TestLineProgress: the display for pipes and logs is plain lines: one per
// file, one per interval while bytes arrive, no control characters.
func TestLineProgress(t *testing.T) {
	h, _ := publish(t, 300_000)
	var out bytes.Buffer
	c := newTestClient(t, h)
	c.PartSize, c.Jobs = 10_000, 2
	c.Progress = NewProgress(&out, false, time.Nanosecond)
	if _, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"pulling " + repoID + ": 5 files", "  model.safetensors (300.0 kB)", "%, ", "B/s", "left\n", "pulled " + repoID} {
		if !strings.Contains(got, want) {
			t.Errorf("progress lacks %q:\n%s", want, got)
		}
	}
	if strings.ContainsFunc(got, func(r rune) bool { return r < ' ' && r != '\n' }) {
		t.Errorf("control characters in plain progress: %q", got)
	}
	var quiet bytes.Buffer
	c = newTestClient(t, h)
	c.Progress = NewProgress(&quiet, true, 0)
	if _, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"}); err != nil || quiet.Len() != 0 {
		t.Fatalf("quiet progress wrote %q (%v)", quiet.String(), err)
	}
}

func TestIncludePatterns(t *testing.T) {
	h, _ := publish(t, 1000)
	c := newTestClient(t, h)
	c.Include = []string{"*.md"}
	dir, err := c.Pull(context.Background(), ID{Repo: repoID, Revision: "main"})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "README.md,config.json" {
		t.Errorf("--include *.md fetched %v, want README.md and the config", names)
	}
	h.Add("test-org/gguf", map[string][]byte{"config.json": []byte(`{}`), "model.gguf": []byte("x")})
	_, err = c.Pull(context.Background(), ID{Repo: "test-org/gguf", Revision: "main"})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "GGUF") {
		t.Errorf("a repository without safetensors: %v", err)
	}
}
