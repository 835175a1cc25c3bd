package hub

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Pull makes id's files (those Include matches) present in the cache and
// returns its snapshot directory. Files already there are not fetched
// again, partial ones resume. In offline mode it returns the cached
// snapshot, or an error wrapping ErrOffline.
func (c *Client) Pull(ctx context.Context, id ID) (string, error) {
	if c.Cache.Dir == "" {
		return "", fmt.Errorf("no Hugging Face cache directory: set HF_HUB_CACHE or HF_HOME")
	}
	if c.Offline {
		dir, err := c.Cache.Snapshot(id)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrOffline, err)
		}
		return dir, nil
	}
	info, err := c.repoInfo(ctx, id)
	if err != nil {
		return "", err
	}
	files, err := c.selectFiles(id, info)
	if err != nil {
		return "", err
	}
	need, err := c.checkSpace(id, info.SHA, files)
	if err != nil {
		return "", err
	}
	p := &puller{c: c, id: id, commit: info.SHA, slots: make(chan struct{}, c.jobs()), progress: c.Progress}
	if p.progress == nil {
		p.progress = noProgress{}
	}
	p.progress.Start(id.String(), len(files), need)
	defer p.progress.Finish()
	// config.json first: a model the engine cannot run stops here, before
	// gigabytes of weights.
	if err := p.fetchFile(ctx, files[0]); err != nil {
		return "", err
	}
	if c.CheckConfig != nil {
		dir := filepath.Join(c.Cache.RepoDir(id.Repo), "snapshots", info.SHA)
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err == nil {
			err = c.CheckConfig(data)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w: %v", id, ErrUnsupported, err)
		}
	}
	if err := p.fetchAll(ctx, files[1:]); err != nil {
		return "", err
	}
	if err := c.Cache.writeRef(id, info.SHA); err != nil {
		return "", fmt.Errorf("%s: writing refs/%s: %w", id, id.Revision, err)
	}
	return filepath.Join(c.Cache.RepoDir(id.Repo), "snapshots", info.SHA), nil
}

// fetchAll fetches files in parallel, at most Jobs at once; the first
// error cancels the rest.
func (p *puller) fetchAll(ctx context.Context, files []sibling) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, p.c.jobs())
	for _, f := range files {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.fetchFile(ctx, f); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// selectFiles keeps config.json, first, and the files Include matches.
// The repo must have config.json and safetensors weights.
func (c *Client) selectFiles(id ID, info *repoInfo) ([]sibling, error) {
	include := c.Include
	if len(include) == 0 {
		include = DefaultInclude
	}
	var res []*regexp.Regexp
	for _, p := range include {
		res = append(res, fnmatch(p))
	}
	var files []sibling
	var config, weights bool
	for _, s := range info.Siblings {
		if !validRepoPath(s.Name) {
			return nil, fmt.Errorf("%s: the file list names %q, which is not a plain relative path", id, s.Name)
		}
		weights = weights || strings.HasSuffix(s.Name, ".safetensors")
		if s.Name == "config.json" {
			config = true
			files = append([]sibling{s}, files...) // the engine's check reads it first
			continue
		}
		for _, re := range res {
			if re.MatchString(s.Name) {
				files = append(files, s)
				break
			}
		}
	}
	if !config {
		return nil, fmt.Errorf("%s: %w: the repository has no config.json at revision %s, so it is not a model this engine can load", id, ErrUnsupported, id.Revision)
	}
	if !weights {
		return nil, fmt.Errorf("%s: %w: it has no safetensors weights; the engine reads MLX or Hugging Face safetensors checkpoints (is this a GGUF or PyTorch .bin repository?)",
			id, ErrUnsupported)
	}
	return files, nil
}

// validRepoPath rejects names that would escape the snapshot directory.
func validRepoPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.Contains(p, `\`) && path.Clean(p) == p &&
		p != ".." && !strings.HasPrefix(p, "../")
}

func (s sibling) size() int64 {
	if s.LFS != nil {
		return s.LFS.Size
	}
	return s.Size
}

// checkSpace compares the bytes still to fetch (files neither linked nor
// in blobs/, less what partial downloads hold) with the free space.
func (c *Client) checkSpace(id ID, commit string, files []sibling) (int64, error) {
	repo := c.Cache.RepoDir(id.Repo)
	var need int64
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(repo, "snapshots", commit, filepath.FromSlash(f.Name))); err == nil {
			continue
		}
		if etag := f.etag(); etag != "" {
			blob := filepath.Join(repo, "blobs", etag)
			if _, err := os.Stat(blob); err == nil {
				continue
			}
			if info, err := os.Stat(blob + ".incomplete"); err == nil {
				need -= info.Size()
			}
		}
		need += f.size()
	}
	dir := c.Cache.Dir
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if free := diskFree(dir); free >= 0 && need > free {
		return need, fmt.Errorf("%s: %w: it needs %s more and %s is free on the disk holding %s; free some space, or set HF_HUB_CACHE to a larger disk",
			id, ErrNoSpace, formatBytes(need), formatBytes(free), c.Cache.Dir)
	}
	return need, nil
}

// diskFree is DiskFree, a variable for tests.
var diskFree = DiskFree

// etag is the blob name the Hub's HEAD will give, known from the file
// list: the sha256 of an LFS file, else the git blob id.
func (s sibling) etag() string {
	if s.LFS != nil {
		return s.LFS.SHA256
	}
	return s.BlobID
}

// fnmatch compiles a pattern as Python's fnmatch does: '*' matches any
// run of characters ('/' included), '?' one, [...] a set, [!...] its
// complement.
func fnmatch(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; ch {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := strings.IndexByte(p[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			set := p[i+1 : i+1+j]
			if strings.HasPrefix(set, "!") {
				set = "^" + set[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(set, `\`, `\\`) + "]")
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return regexp.MustCompile("^" + regexp.QuoteMeta(p) + "$")
	}
	return re
}

// formatBytes prints a size in decimal units, as the Hub's pages do.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
