package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors a download can end with; each is wrapped in a message that names
// the repository or file and says what to do.
var (
	ErrRepoNotFound = errors.New("repository not found")
	ErrGated        = errors.New("access denied")
	ErrOffline      = errors.New("offline mode (HF_HUB_OFFLINE) is on")
	ErrNoNetwork    = errors.New("cannot reach the Hub")
	ErrNoSpace      = errors.New("not enough disk space")
	ErrChecksum     = errors.New("checksum mismatch")
	ErrUnsupported  = errors.New("unsupported model")
)

// DefaultInclude are the files the engine needs: config, weights,
// tokenizer and chat template. Patterns match as Python's fnmatch does
// (huggingface_hub's allow_patterns): '*' also matches '/'.
var DefaultInclude = []string{
	"config.json", "generation_config.json",
	"model*.safetensors", "model.safetensors.index.json",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
	"tokenizer.model", "vocab.json", "merges.txt",
	"chat_template.jinja", "chat_template.json",
}

// Client downloads model repositories into a Cache. The zero value of each
// field but Cache means its default; NewClient fills them from the
// environment.
type Client struct {
	Endpoint string // the Hub or a mirror (default DefaultEndpoint)
	Token    string // sent as "Authorization: Bearer" to the Endpoint ("" : anonymous)
	Cache    Cache
	Offline  bool         // use the cache only; Pull fails with ErrOffline when it lacks the model
	HTTP     *http.Client // default: a client with connection and header timeouts
	Include  []string     // file patterns to fetch (default DefaultInclude)
	// Jobs bounds the connections open at once: files in parallel, and
	// ranged parts of a large file (default 8).
	Jobs int
	// PartSize is the size of one ranged part of a large file (default 64
	// MiB); up to Jobs parts are held in memory to be written in order.
	PartSize int64
	Retries  int // tries after a transient failure (default 5)
	// StallTimeout is how long a download may receive nothing before its
	// connection is dropped and retried (default 60s).
	StallTimeout time.Duration
	RetryWait    time.Duration // wait before the first retry, doubled each time (default 1s)
	// Progress hears about the bytes as they arrive (nil: nothing is shown).
	Progress Progress
	// CheckConfig, when set, is given config.json before any weight is
	// fetched; an error stops the download (an unsupported model_type).
	CheckConfig func(config []byte) error
}

// NewClient returns a client configured from the environment as
// huggingface_hub is: HF_ENDPOINT, HF_TOKEN (or the login token file),
// HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE.
func NewClient() *Client {
	return &Client{Endpoint: Endpoint(), Token: Token(), Cache: Cache{Dir: CacheDir()}, Offline: Offline()}
}

func (c *Client) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint
	}
	return strings.TrimRight(c.Endpoint, "/")
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout:   30 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	MaxIdleConnsPerHost:   16,
	ForceAttemptHTTP2:     true,
}}

func (c *Client) jobs() int {
	if c.Jobs > 0 {
		return c.Jobs
	}
	return 8
}

func (c *Client) partSize() int64 {
	if c.PartSize > 0 {
		return c.PartSize
	}
	return 64 << 20
}

func (c *Client) retries() int {
	if c.Retries > 0 {
		return c.Retries
	}
	return 5
}

func (c *Client) stallTimeout() time.Duration {
	if c.StallTimeout > 0 {
		return c.StallTimeout
	}
	return time.Minute
}

func (c *Client) retryWait(try int) time.Duration {
	w := c.RetryWait
	if w <= 0 {
		w = time.Second
	}
	return min(w<<try, 30*time.Second)
}

// newRequest builds a request; the token goes only to the Hub's own host,
// never to the storage host a file redirects to.
func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "mlx-moe")
	if c.Token != "" {
		if ep, err := url.Parse(c.endpoint()); err == nil && ep.Host == req.URL.Host {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
	}
	return req, nil
}

// send does a request with retries on transient failures (network errors,
// 429, 5xx). A final non-2xx/3xx answer is turned into an error by
// statusError; the caller closes the body of what is returned.
func (c *Client) send(ctx context.Context, hc *http.Client, id ID, file string, build func() (*http.Request, error)) (*http.Response, error) {
	for try := 0; ; try++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		transient := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if err == nil && !transient {
			if resp.StatusCode >= 400 {
				defer resp.Body.Close()
				return nil, c.statusError(id, file, resp)
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if try >= c.retries() || (err != nil && try >= unreachableRetries(err)) {
			if err != nil {
				return nil, c.networkError(err)
			}
			defer resp.Body.Close()
			return nil, c.statusError(id, file, resp)
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		if err := sleep(ctx, c.retryWait(try)); err != nil {
			return nil, err
		}
	}
}

// unreachableRetries bounds the retries of an error that says the host
// cannot be reached at all: a name that does not resolve is not retried, a
// refused connection twice, so a machine without network hears so in
// seconds.
func unreachableRetries(err error) int {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return 0
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return 2
	}
	return math.MaxInt
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) networkError(err error) error {
	return fmt.Errorf("%w %s: %v; check the network connection (or HF_ENDPOINT for a mirror); models already downloaded load without it (HF_HUB_OFFLINE=1)",
		ErrNoNetwork, c.endpoint(), err)
}

// statusError explains a failed answer, using the Hub's X-Error-Code
// header as huggingface_hub does (RepoNotFound, GatedRepo,
// RevisionNotFound, EntryNotFound).
func (c *Client) statusError(id ID, file string, resp *http.Response) error {
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	if msg == "" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		var j struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil {
			msg = j.Error
		}
	}
	detail := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if msg != "" {
		detail += ": " + msg
	}
	login := "set HF_TOKEN to an access token (https://huggingface.co/settings/tokens) or run `huggingface-cli login`"
	if c.Token != "" {
		login = "the token in use (HF_TOKEN or the `huggingface-cli login` token file) has no access to it; use one that has"
	}
	switch {
	case code == "RevisionNotFound":
		return fmt.Errorf("%s: revision %q not found (%s); check the branch, tag or commit after @", id.Repo, id.Revision, detail)
	case code == "EntryNotFound":
		return fmt.Errorf("%s: file %s not found at revision %s (%s)", id.Repo, file, id.Revision, detail)
	case code == "" && resp.StatusCode == http.StatusUnauthorized && c.Token != "":
		return fmt.Errorf("%s: %w: the Hub refused the access token (%s); HF_TOKEN or the `huggingface-cli login` token file holds a token that is invalid or expired: make a new one at https://huggingface.co/settings/tokens",
			id.Repo, ErrGated, detail)
	case code == "GatedRepo" || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %w (%s): the repository is gated or private: accept its license at %s/%s while logged in; %s",
			id.Repo, ErrGated, detail, c.endpoint(), id.Repo, login)
	case code == "RepoNotFound" || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s: %w on %s (%s); check the name (ORG/NAME, as on the model's page); if it is private, %s",
			id.Repo, ErrRepoNotFound, c.endpoint(), detail, login)
	}
	what := id.Repo
	if file != "" {
		what += ": " + file
	}
	return fmt.Errorf("%s: the Hub answered %s; try again later", what, detail)
}

// repoInfo is the part of /api/models/{repo}/revision/{rev}?blobs=true the
// download needs.
type repoInfo struct {
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

type sibling struct {
	Name   string `json:"rfilename"`
	Size   int64  `json:"size"`
	BlobID string `json:"blobId"`
	LFS    *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

func (c *Client) repoInfo(ctx context.Context, id ID) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", c.endpoint(), id.Repo, url.PathEscape(id.Revision))
	resp, err := c.send(ctx, c.httpClient(), id, "", func() (*http.Request, error) { return c.newRequest(ctx, http.MethodGet, u) })
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("%s: reading the file list from %s: %v", id, u, err)
	}
	if !sha1Hex.MatchString(info.SHA) {
		return nil, fmt.Errorf("%s: the file list from %s has no commit hash (sha %q)", id, u, info.SHA)
	}
	return &info, nil
}

// fileMeta is what a HEAD of a resolve URL tells about one file.
type fileMeta struct {
	commit string // X-Repo-Commit
	etag   string // X-Linked-Etag (LFS: the sha256) or ETag (git blob id)
	size   int64  // X-Linked-Size or Content-Length
	url    string // where the bytes are: the storage host a redirect names, or the resolve URL
}

// head asks the Hub about one file of a commit, following only redirects
// within the Hub (a renamed repository), not the one to the storage host:
// its Location is where the bytes are fetched from.
func (c *Client) head(ctx context.Context, id ID, commit, file string) (fileMeta, error) {
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.endpoint(), id.Repo, commit, escapePath(file))
	hc := *c.httpClient()
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host || len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.send(ctx, &hc, id, file, func() (*http.Request, error) {
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err == nil {
			req.Header.Set("Accept-Encoding", "identity") // the size must be the file's, not a compressed one
		}
		return req, err
	})
	if err != nil {
		return fileMeta{}, err
	}
	resp.Body.Close()
	h := resp.Header
	m := fileMeta{commit: h.Get("X-Repo-Commit"), etag: normalizeETag(h.Get("X-Linked-Etag")), url: resp.Request.URL.String()}
	if m.etag == "" {
		m.etag = normalizeETag(h.Get("ETag"))
	}
	size := h.Get("X-Linked-Size")
	if size == "" {
		size = h.Get("Content-Length")
	}
	m.size, err = strconv.ParseInt(size, 10, 64)
	if loc := h.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if l, perr := resp.Request.URL.Parse(loc); perr == nil {
			m.url = l.String()
		}
	}
	switch {
	case m.etag == "" || strings.ContainsAny(m.etag, `/\`) || m.etag == "." || m.etag == "..":
		return m, fmt.Errorf("%s: %s: the Hub gave no usable ETag for it (%q)", id.Repo, file, m.etag)
	case err != nil || m.size < 0:
		return m, fmt.Errorf("%s: %s: the Hub gave no size for it (X-Linked-Size/Content-Length %q)", id.Repo, file, size)
	}
	return m, nil
}

// normalizeETag strips the weak marker and quotes: W/"abc" -> abc.
func normalizeETag(s string) string {
	return strings.Trim(strings.TrimPrefix(s, "W/"), `"`)
}

// escapePath escapes each segment of a repository path for a URL.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
