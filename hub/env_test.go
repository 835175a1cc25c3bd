package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseID(t *testing.T) {
	for in, want := range map[string]ID{
		"mlx-community/Qwen3-Coder-Next-4bit":         {"mlx-community/Qwen3-Coder-Next-4bit", "main"},
		"org/m@v1.0":                                  {"org/m", "v1.0"},
		"org/m@refs/pr/3":                             {"org/m", "refs/pr/3"},
		"Org_1/model.name@" + strings.Repeat("a", 40): {"Org_1/model.name", strings.Repeat("a", 40)},
	} {
		got, err := ParseID(in)
		if err != nil || got != want {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "model", "a/b/c", "org/", "/m", "org/m@", "-org/m", "org/m.", "org/a--b", "org/a..b", "org/m@../x", "org name/m", "./m"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "org", "m"), 0o755)
	t.Chdir(dir)
	if IsID("org/m") || !IsID("org/other") {
		t.Error("IsID must prefer an existing directory")
	}
}

func TestEnvironment(t *testing.T) {
	home := t.TempDir()
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	if got, want := CacheDir(), filepath.Join(home, ".cache", "huggingface", "hub"); got != want {
		t.Errorf("default cache %s, want %s", got, want)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "xdg"))
	if got, want := CacheDir(), filepath.Join(home, "xdg", "huggingface", "hub"); got != want {
		t.Errorf("XDG cache %s, want %s", got, want)
	}
	t.Setenv("HF_HOME", filepath.Join(home, "hf"))
	if got, want := CacheDir(), filepath.Join(home, "hf", "hub"); got != want {
		t.Errorf("HF_HOME cache %s, want %s", got, want)
	}
	t.Setenv("HF_HUB_CACHE", "~/hubcache")
	if got, want := CacheDir(), filepath.Join(home, "hubcache"); got != want {
		t.Errorf("HF_HUB_CACHE %s, want %s", got, want)
	}

	if Token() != "" {
		t.Error("a token without any set")
	}
	os.MkdirAll(filepath.Join(home, "hf"), 0o755)
	os.WriteFile(filepath.Join(home, "hf", "token"), []byte("hf_fromfile\n"), 0o600)
	if got := Token(); got != "hf_fromfile" {
		t.Errorf("token from $HF_HOME/token: %q", got)
	}
	t.Setenv("HF_TOKEN", " hf_env ")
	if got := Token(); got != "hf_env" {
		t.Errorf("HF_TOKEN: %q", got)
	}

	if Endpoint() != DefaultEndpoint || Offline() {
		t.Error("defaults")
	}
	t.Setenv("HF_ENDPOINT", "https://mirror.example/")
	t.Setenv("HF_HUB_OFFLINE", "yes")
	if Endpoint() != "https://mirror.example" || !Offline() {
		t.Errorf("endpoint %s, offline %v", Endpoint(), Offline())
	}
}

func TestFnmatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		match         bool
	}{
		{"*.safetensors", "model-00001-of-00002.safetensors", true},
		{"*.safetensors", "original/model.safetensors", true}, // fnmatch's * crosses '/'
		{"model*.safetensors", "original/model.safetensors", false},
		{"config.json", "config.json", true},
		{"config.json", "configXjson", false},
		{"tokenizer?json", "tokenizer.json", true},
		{"[!o]*.json", "original.json", false},
		{"[ab]*", "b.txt", true},
		{"[unclosed", "[unclosed", true},
	} {
		if got := fnmatch(tc.pattern).MatchString(tc.name); got != tc.match {
			t.Errorf("fnmatch(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

func TestNormalizeETag(t *testing.T) {
	for in, want := range map[string]string{`"abc"`: "abc", `W/"abc"`: "abc", "abc": "abc", "": ""} {
		if got := normalizeETag(in); got != want {
			t.Errorf("normalizeETag(%q) = %q", in, got)
		}
	}
}

// TestDiskFullKeepsThePartialFile: a write that fails for lack of space
// says so, and that the download resumes.
func TestDiskFullMessage(t *testing.T) {
	p := &puller{id: ID{Repo: "org/m", Revision: "main"}}
	err := p.writeError(sibling{Name: "model.safetensors"}, "/cache/blobs/x.incomplete", 1<<30, 4<<30, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "resumes") || !strings.Contains(err.Error(), "x.incomplete") {
		t.Fatalf("disk full: %v", err)
	}
}
