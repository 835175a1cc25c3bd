// Package hubtest is an in-process fake of the Hugging Face Hub for tests:
// the model API, resolve URLs with the Hub's headers (X-Repo-Commit,
// ETag, X-Linked-Etag, X-Linked-Size), a redirect to a second host for LFS
// files, and byte ranges there. Hooks make it fail the ways the real one
// does.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Hub is the fake: Server is the Hub (its URL is the endpoint), Storage the
// host LFS files redirect to.
type Hub struct {
	Server  *httptest.Server
	Storage *httptest.Server

	mu    sync.Mutex
	repos map[string]*Repo

	// Hooks, set between pulls.
	FailAPI  int              // answer the next N API calls with 500
	CutAfter map[string]int64 // file -> the next GET of it stops after N bytes
	// StallAfter: file -> the next GET of it sends N bytes, then nothing
	// until the client gives up.
	StallAfter map[string]int64
	Down       bool            // the storage host answers 503
	NoRanges   bool            // the storage host ignores Range
	Corrupt    map[string]bool // files served with one byte flipped

	APICalls    atomic.Int64 // API requests
	Gets        atomic.Int64 // GETs of file contents (resolve or storage)
	BytesServed atomic.Int64 // bytes of file contents sent (counted as they are handed to the connection)
	InFlight    atomic.Int64 // storage GETs being answered now
	MaxInFlight atomic.Int64 // the most at once
	AuthLeaked  atomic.Bool  // the storage host received an Authorization header

	ranges []string // Range headers the storage host saw
}

// ExpiredToken is a token the fake Hub refuses as the real one refuses a
// revoked or expired token.
const ExpiredToken = "hf_expired"

// Repo is one model repository of the fake Hub.
type Repo struct {
	Commit string
	Files  map[string][]byte
	Token  string // when set, requests must carry it: 401 (private) or 403 (Gated) without
	Gated  bool
}

// New starts a fake Hub; it is closed when the test ends.
func New(t interface{ Cleanup(func()) }) *Hub {
	h := &Hub{repos: map[string]*Repo{}, CutAfter: map[string]int64{}, StallAfter: map[string]int64{}, Corrupt: map[string]bool{}}
	h.Storage = httptest.NewServer(http.HandlerFunc(h.serveStorage))
	h.Server = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(h.Server.Close)
	t.Cleanup(h.Storage.Close)
	return h
}

// Add publishes files as repo (ORG/NAME) at a commit derived from them;
// *.safetensors are LFS files.
func (h *Hub) Add(repo string, files map[string][]byte) *Repo {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	c := sha1.New()
	for _, n := range names {
		fmt.Fprintf(c, "%s %x\n", n, sha256.Sum256(files[n]))
	}
	r := &Repo{Commit: hex.EncodeToString(c.Sum(nil)), Files: files}
	h.mu.Lock()
	h.repos[repo] = r
	h.mu.Unlock()
	return r
}

// AddDir publishes the files of a directory as repo.
func (h *Hub) AddDir(repo, dir string) (*Repo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if files[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return h.Add(repo, files), nil
}

// SetDown makes the storage host answer 503 (true) or serve again; safe
// while a pull runs.
func (h *Hub) SetDown(down bool) {
	h.mu.Lock()
	h.Down = down
	h.mu.Unlock()
}

// Ranges returns the Range headers the storage host has seen.
func (h *Hub) Ranges() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ranges...)
}

// IsLFS reports whether a file is stored as an LFS object.
func IsLFS(name string) bool { return strings.HasSuffix(name, ".safetensors") }

// GitOID is the git blob id of data, the ETag of a non-LFS file.
func GitOID(data []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(data))
	s.Write(data)
	return hex.EncodeToString(s.Sum(nil))
}

// SHA256 is the hex sha256 of data, the ETag of an LFS file.
func SHA256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// repo finds ORG/NAME and checks the token as the Hub does: a private repo
// is "not found" (401) without it, a gated one forbidden (403).
func (h *Hub) repo(w http.ResponseWriter, r *http.Request, name string, forFile bool) *Repo {
	h.mu.Lock()
	repo := h.repos[name]
	h.mu.Unlock()
	authorized := repo != nil && (repo.Token == "" || r.Header.Get("Authorization") == "Bearer "+repo.Token)
	switch {
	case r.Header.Get("Authorization") == "Bearer "+ExpiredToken:
		hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return nil
	case repo == nil || (!authorized && !repo.Gated):
		status := http.StatusNotFound
		if r.Header.Get("Authorization") == "" {
			status = http.StatusUnauthorized
		}
		hubError(w, status, "RepoNotFound", "Repository not found")
		return nil
	case !authorized && forFile:
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+name+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		return nil
	}
	return repo
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if rest, ok := strings.CutPrefix(p, "api/models/"); ok {
		h.APICalls.Add(1)
		h.mu.Lock()
		fail := h.FailAPI > 0
		if fail {
			h.FailAPI--
		}
		h.mu.Unlock()
		if fail {
			hubError(w, http.StatusInternalServerError, "", "Internal Error")
			return
		}
		parts := strings.SplitN(rest, "/", 4) // org, name, "revision", rev
		if len(parts) != 4 || parts[2] != "revision" || r.URL.Query().Get("blobs") == "" {
			hubError(w, http.StatusBadRequest, "", "bad request")
			return
		}
		repo := h.repo(w, r, parts[0]+"/"+parts[1], false)
		if repo == nil {
			return
		}
		if parts[3] != "main" && parts[3] != repo.Commit {
			hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+parts[3])
			return
		}
		h.writeInfo(w, parts[0]+"/"+parts[1], repo)
		return
	}
	parts := strings.SplitN(p, "/", 5) // org, name, "resolve", rev, file
	if len(parts) != 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo := h.repo(w, r, parts[0]+"/"+parts[1], true)
	if repo == nil {
		return
	}
	if parts[3] != "main" && parts[3] != repo.Commit {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+parts[3])
		return
	}
	data, ok := repo.Files[parts[4]]
	if !ok {
		hubError(w, http.StatusNotFound, "EntryNotFound", parts[4]+" does not exist")
		return
	}
	w.Header().Set("X-Repo-Commit", repo.Commit)
	if IsLFS(parts[4]) {
		sum := SHA256(data)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		w.Header().Set("ETag", `"`+GitOID([]byte("pointer "+sum))+`"`)
		w.Header().Set("Location", h.Storage.URL+"/blobs/"+sum+"?file="+parts[4]+"&repo="+parts[0]+"/"+parts[1])
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitOID(data)+`"`)
	h.serveBytes(w, r, parts[4], data)
}

func (h *Hub) writeInfo(w http.ResponseWriter, name string, repo *Repo) {
	type lfs struct {
		SHA256      string `json:"sha256"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type sibling struct {
		Name   string `json:"rfilename"`
		Size   int    `json:"size"`
		BlobID string `json:"blobId"`
		LFS    *lfs   `json:"lfs,omitempty"`
	}
	var sibs []sibling
	for n, d := range repo.Files {
		s := sibling{Name: n, Size: len(d), BlobID: GitOID(d)}
		if IsLFS(n) {
			s.LFS = &lfs{SHA256: SHA256(d), Size: len(d), PointerSize: 134}
			s.Size = 134
			s.BlobID = GitOID([]byte("pointer " + s.LFS.SHA256))
		}
		sibs = append(sibs, s)
	}
	sort.Slice(sibs, func(i, j int) bool { return sibs[i].Name < sibs[j].Name })
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": name, "modelId": name, "sha": repo.Commit, "private": repo.Token != "", "siblings": sibs})
}

func (h *Hub) serveStorage(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		h.AuthLeaked.Store(true)
	}
	h.mu.Lock()
	down := h.Down
	repo := h.repos[r.URL.Query().Get("repo")]
	h.ranges = append(h.ranges, r.Header.Get("Range"))
	h.mu.Unlock()
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	file := r.URL.Query().Get("file")
	if repo == nil || repo.Files[file] == nil || "/blobs/"+SHA256(repo.Files[file]) != r.URL.Path {
		http.NotFound(w, r)
		return
	}
	n := h.InFlight.Add(1)
	defer h.InFlight.Add(-1)
	for m := h.MaxInFlight.Load(); n > m && !h.MaxInFlight.CompareAndSwap(m, n); m = h.MaxInFlight.Load() {
	}
	h.serveBytes(w, r, file, repo.Files[file])
}

// serveBytes answers a GET (with an optional single Range) or a HEAD.
func (h *Hub) serveBytes(w http.ResponseWriter, r *http.Request, file string, data []byte) {
	w.Header().Set("Accept-Ranges", "bytes")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		return
	}
	h.mu.Lock()
	if h.Corrupt[file] {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0x40
	}
	cut, hasCut := h.CutAfter[file]
	delete(h.CutAfter, file)
	stall, hasStall := h.StallAfter[file]
	delete(h.StallAfter, file)
	noRanges := h.NoRanges
	h.mu.Unlock()
	from, to := 0, len(data)-1
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !noRanges {
		a, b, ok := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
		f, err1 := strconv.Atoi(a)
		if !ok || err1 != nil || f >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		from = f
		if b != "" {
			if t, err := strconv.Atoi(b); err == nil && t < to {
				to = t
			}
		}
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)))
	}
	body := data[from : to+1]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	h.Gets.Add(1)
	if hasCut && cut < int64(len(body)) {
		body = body[:cut] // the connection drops here
	}
	// Bytes are counted before they are written: the client may have read
	// them all, and its caller checked the count, before Write returns.
	if hasStall && stall < int64(len(body)) {
		h.BytesServed.Add(stall)
		w.Write(body[:stall])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	h.BytesServed.Add(int64(len(body)))
	w.Write(body)
}

// WriteCache lays out repo in a Hugging Face cache directory the way
// huggingface_hub documents and writes it: blobs/<etag> (sha256 for LFS
// files, git blob id otherwise), snapshots/<commit>/<file> as relative
// symlinks to ../../blobs/<etag>, refs/main holding the commit.
func WriteCache(cache, repo string, r *Repo) error {
	repoDir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	snap := filepath.Join(repoDir, "snapshots", r.Commit)
	for _, d := range []string{filepath.Join(repoDir, "blobs"), filepath.Join(repoDir, "refs"), snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for name, data := range r.Files {
		etag := GitOID(data)
		if IsLFS(name) {
			etag = SHA256(data)
		}
		if err := os.WriteFile(filepath.Join(repoDir, "blobs", etag), data, 0o644); err != nil {
			return err
		}
		link := filepath.Join(snap, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Dir(link), filepath.Join(repoDir, "blobs", etag))
		if err := os.Symlink(rel, link); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(repoDir, "refs", "main"), []byte(r.Commit), 0o644)
}
