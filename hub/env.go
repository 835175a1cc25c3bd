package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultEndpoint is the Hub's address; HF_ENDPOINT names a mirror.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch a model id without @rev means.
const DefaultRevision = "main"

// ID names a model repository and a revision: ORG/NAME[@rev].
type ID struct {
	Repo     string // ORG/NAME
	Revision string // branch, tag or commit; never empty after ParseID
}

func (id ID) String() string {
	if id.Revision == DefaultRevision {
		return id.Repo
	}
	return id.Repo + "@" + id.Revision
}

// repoPart is one side of ORG/NAME as the Hub allows it: letters, digits,
// '-', '_', '.', not starting or ending with '-' or '.'.
var repoPart = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

// ParseID parses ORG/NAME or ORG/NAME@REVISION.
func ParseID(s string) (ID, error) {
	repo, rev, hasRev := strings.Cut(s, "@")
	if hasRev && (rev == "" || strings.ContainsAny(rev, " \t\n") || strings.Contains(rev, "..")) {
		return ID{}, fmt.Errorf("model id %q: expected ORG/NAME@REVISION with a branch, tag or commit after @", s)
	}
	if !hasRev {
		rev = DefaultRevision
	}
	org, name, ok := strings.Cut(repo, "/")
	if !ok || !repoPart.MatchString(org) || !repoPart.MatchString(name) || len(repo) > 96 ||
		strings.Contains(repo, "--") || strings.Contains(repo, "..") {
		return ID{}, fmt.Errorf("model id %q: expected ORG/NAME (letters, digits, '-', '_', '.'), like mlx-community/Qwen3-Coder-Next-4bit", s)
	}
	return ID{Repo: repo, Revision: rev}, nil
}

// IsID reports whether s reads as a hub model id rather than a path: it
// parses as ORG/NAME[@rev] and names no existing file or directory.
func IsID(s string) bool {
	if _, err := ParseID(s); err != nil {
		return false
	}
	_, err := os.Stat(s)
	return os.IsNotExist(err)
}

// home is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface ("" without a home directory).
func home() string {
	if h := os.Getenv("HF_HOME"); h != "" {
		return expandHome(h)
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(expandHome(x), "huggingface")
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(u, ".cache", "huggingface")
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if u, err := os.UserHomeDir(); err == nil {
			return filepath.Join(u, rest)
		}
	}
	return os.ExpandEnv(p)
}

// CacheDir is the hub cache: $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE (its
// older name), else the hub folder of HF_HOME ("" without a home directory).
func CacheDir() string {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if d := os.Getenv(v); d != "" {
			return expandHome(d)
		}
	}
	if h := home(); h != "" {
		return filepath.Join(h, "hub")
	}
	return ""
}

// Offline reports whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set
// to 1, ON, YES or TRUE: then nothing is fetched and only the cache is used.
func Offline() bool {
	v := os.Getenv("HF_HUB_OFFLINE")
	if v == "" {
		v = os.Getenv("TRANSFORMERS_OFFLINE")
	}
	switch strings.ToUpper(v) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// Endpoint is $HF_ENDPOINT, else DefaultEndpoint.
func Endpoint() string {
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		return strings.TrimRight(e, "/")
	}
	return DefaultEndpoint
}

// Token is the access token: $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, else the
// file `huggingface-cli login` writes ($HF_TOKEN_PATH, default
// $HF_HOME/token). "" means anonymous.
func Token() string {
	for _, v := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := cleanToken(os.Getenv(v)); t != "" {
			return t
		}
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		if h := home(); h != "" {
			path = filepath.Join(h, "token")
		}
	}
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(expandHome(path))
	if err != nil {
		return ""
	}
	return cleanToken(string(data))
}

func cleanToken(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(s))
}
