package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// puller is one Pull: the repository, its commit, and the slots that bound
// connections and part buffers across all its files.
type puller struct {
	c        *Client
	id       ID
	commit   string
	slots    chan struct{} // a stream, or a ranged part until it is written, holds one
	progress Progress
}

// fetchFile makes snapshots/<commit>/<file> point at a complete, verified
// blob: linked when the blob is there, else downloaded under the blob's
// lock (another process fetching it makes this one wait, then link).
func (p *puller) fetchFile(ctx context.Context, f sibling) error {
	c := p.c
	repo := c.Cache.RepoDir(p.id.Repo)
	pointer := filepath.Join(repo, "snapshots", p.commit, filepath.FromSlash(f.Name))
	if _, err := os.Stat(pointer); err == nil {
		return nil
	}
	meta, err := c.head(ctx, p.id, p.commit, f.Name)
	if err != nil {
		return err
	}
	if meta.commit != "" && meta.commit != p.commit {
		return fmt.Errorf("%s: %s: the Hub resolved commit %s to %s; try again", p.id, f.Name, p.commit, meta.commit)
	}
	if f.LFS != nil && meta.etag != f.LFS.SHA256 {
		return fmt.Errorf("%s: %s: the Hub's ETag %s differs from the file list's sha256 %s; try again", p.id, f.Name, meta.etag, f.LFS.SHA256)
	}
	blob := filepath.Join(repo, "blobs", meta.etag)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("creating the cache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(c.Cache.lockDir(p.id.Repo), meta.etag+".lock"))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.id, f.Name, err)
	}
	defer unlock()
	if _, err := os.Stat(blob); err != nil {
		if err := p.download(ctx, f, meta, blob); err != nil {
			return err
		}
	}
	if err := c.Cache.link(p.id.Repo, p.commit, f.Name, meta.etag); err != nil {
		return err
	}
	p.progress.Done(f.Name, meta.size)
	return nil
}

// download fetches a file into blobs/<etag>.incomplete, resuming what is
// there, hashing as it writes, and renames it into place once its size
// and hash are right. A partial file is kept on any failure but a hash
// mismatch.
func (p *puller) download(ctx context.Context, f sibling, meta fileMeta, blob string) error {
	part := blob + ".incomplete"
	file, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.id, f.Name, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	have := info.Size()
	if have > meta.size {
		have = 0
	}
	v := newVerifier(f, meta.size)
	if have > 0 {
		// The kept prefix is hashed once; what follows is hashed as it
		// arrives.
		if _, err := io.Copy(v, io.NewSectionReader(file, 0, have)); err != nil {
			return fmt.Errorf("%s: reading %s: %w", p.id, part, err)
		}
	}
	if err := file.Truncate(have); err != nil {
		return p.writeError(f, part, have, meta.size, err)
	}
	if _, err := file.Seek(have, io.SeekStart); err != nil {
		return err
	}
	t := &transfer{p: p, name: f.Name, url: meta.url, file: file, hash: v, off: have, size: meta.size}
	if err := t.run(ctx); err != nil {
		return err
	}
	if err := v.check(); err != nil {
		file.Close()
		os.Remove(part)
		return fmt.Errorf("%s: %s: %w: %v; the download was deleted, run the pull again", p.id, f.Name, ErrChecksum, err)
	}
	if err := file.Close(); err != nil {
		return p.writeError(f, part, meta.size, meta.size, err)
	}
	if err := os.Rename(part, blob); err != nil {
		return fmt.Errorf("%s: %s: %w", p.id, f.Name, err)
	}
	return nil
}

// writeError explains a failed write: a full disk keeps the partial file,
// which the next pull resumes.
func (p *puller) writeError(f sibling, part string, have, size int64, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%s: %s: %w: the disk filled up after %s of %s; free some space and pull again: the %s written so far are kept in %s and the download resumes there",
			p.id, f.Name, ErrNoSpace, formatBytes(have), formatBytes(size), formatBytes(have), part)
	}
	return fmt.Errorf("%s: %s: writing %s: %w", p.id, f.Name, part, err)
}

// verifier hashes a file as it is written: sha256 for an LFS file, the git
// blob id (sha1 of "blob <size>\0" and the bytes) otherwise.
type verifier struct {
	hash.Hash
	want string
	git  bool
	size int64
}

func newVerifier(f sibling, size int64) *verifier {
	v := &verifier{size: size}
	v.reset(f)
	return v
}

func (v *verifier) reset(f sibling) {
	switch {
	case f.LFS != nil:
		v.Hash, v.want = sha256.New(), f.LFS.SHA256
	case sha1Hex.MatchString(f.BlobID):
		v.Hash, v.want, v.git = sha1.New(), f.BlobID, true
		fmt.Fprintf(v.Hash, "blob %d\x00", v.size)
	default:
		v.Hash, v.want = sha256.New(), "" // nothing to compare with: size only
	}
}

func (v *verifier) check() error {
	got := hex.EncodeToString(v.Sum(nil))
	if v.want == "" || got == v.want {
		return nil
	}
	if v.git {
		return fmt.Errorf("its git blob id is %s, the Hub's is %s", got, v.want)
	}
	return fmt.Errorf("its sha256 is %s, the Hub's is %s", got, v.want)
}

// transfer is the fetch of one file's remaining bytes [off, size).
type transfer struct {
	p         *puller
	name, url string
	file      *os.File
	hash      *verifier
	off, size int64
}

// errNoRanges means the storage host ignored a Range request.
var errNoRanges = errors.New("the server does not serve byte ranges")

func (t *transfer) run(ctx context.Context) error {
	if t.size-t.off > t.p.c.partSize() && t.p.c.jobs() > 1 {
		err := t.parts(ctx)
		if !errors.Is(err, errNoRanges) {
			return err
		}
	}
	return t.stream(ctx)
}

// stream fetches the rest of the file in one request, written as it comes;
// a connection that breaks is retried from where it stopped.
func (t *transfer) stream(ctx context.Context) error {
	if err := t.p.acquire(ctx); err != nil {
		return err
	}
	defer t.p.release()
	c := t.p.c
	for try := 0; t.off < t.size; {
		resp, err := t.get(ctx, t.off, -1)
		if err != nil {
			if t.off > 0 && ctx.Err() == nil {
				return fmt.Errorf("%w; the %s of %s fetched so far are kept: pull again to resume", err, formatBytes(t.off), formatBytes(t.size))
			}
			return err
		}
		if t.off > 0 && resp.StatusCode == http.StatusOK {
			// The server sent the whole file: start over.
			t.off = 0
			if err := t.file.Truncate(0); err != nil {
				resp.Body.Close()
				return t.p.writeError(sibling{Name: t.name}, t.file.Name(), 0, t.size, err)
			}
			t.file.Seek(0, io.SeekStart)
			t.hash.Hash.Reset()
			if t.hash.git {
				fmt.Fprintf(t.hash.Hash, "blob %d\x00", t.size)
			}
		}
		n, readErr, writeErr := t.copy(resp.Body, t.size-t.off)
		resp.Body.Close()
		t.off += n
		if writeErr != nil {
			return t.p.writeError(sibling{Name: t.name}, t.file.Name(), t.off, t.size, writeErr)
		}
		if readErr == nil && t.off < t.size {
			readErr = io.ErrUnexpectedEOF
		}
		if readErr == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n == 0 {
			try++ // a connection that made progress does not count against the retries
		}
		if try > c.retries() {
			return fmt.Errorf("%s: %s: the download broke off after %s of %s: %v; pull again to resume it",
				t.p.id, t.name, formatBytes(t.off), formatBytes(t.size), readErr)
		}
		if err := sleep(ctx, c.retryWait(try)); err != nil {
			return err
		}
	}
	return nil
}

// copy moves up to n bytes from r to the file and the hash, telling the
// progress as it goes. It returns the bytes written and which side failed.
func (t *transfer) copy(r io.Reader, n int64) (int64, error, error) {
	buf := make([]byte, 1<<20)
	var done int64
	for done < n {
		m, err := r.Read(buf[:min(int64(len(buf)), n-done)])
		if m > 0 {
			if _, werr := t.file.Write(buf[:m]); werr != nil {
				return done, nil, werr
			}
			t.hash.Write(buf[:m])
			done += int64(m)
			t.p.progress.Add(int64(m))
		}
		if err == io.EOF {
			return done, nil, nil
		}
		if err != nil {
			return done, err, nil
		}
	}
	return done, nil, nil
}

// get requests bytes [from, to] of the file (to < 0: to the end). A body
// that sends nothing for StallTimeout fails, so a dead connection is
// retried rather than waited on forever.
func (t *transfer) get(ctx context.Context, from, to int64) (*http.Response, error) {
	c := t.p.c
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.send(ctx, c.httpClient(), t.p.id, t.name, func() (*http.Request, error) {
		req, err := c.newRequest(ctx, http.MethodGet, t.url)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		if to >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
		} else if from > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		}
		return req, nil
	})
	if err != nil {
		cancel()
		return nil, err
	}
	g := &stallGuard{ReadCloser: resp.Body, cancel: cancel, timeout: c.stallTimeout()}
	g.timer = time.AfterFunc(g.timeout, func() { g.stalled.Store(true); cancel() })
	resp.Body = g
	return resp, nil
}

// stallGuard cancels a response whose body stops sending.
type stallGuard struct {
	io.ReadCloser
	cancel  context.CancelFunc
	timer   *time.Timer
	timeout time.Duration
	stalled atomic.Bool
}

func (g *stallGuard) Read(b []byte) (int, error) {
	n, err := g.ReadCloser.Read(b)
	if err != nil && g.stalled.Load() {
		return n, fmt.Errorf("no data for %s", g.timeout)
	}
	g.timer.Reset(g.timeout)
	return n, err
}

func (g *stallGuard) Close() error {
	g.timer.Stop()
	g.cancel()
	return g.ReadCloser.Close()
}

// parts fetches the rest of a large file as ranged parts over several
// connections. Parts are written and hashed in order, so the partial file
// is always a prefix that a later pull can resume; a part waiting for its
// predecessors holds a slot, which bounds the memory.
func (t *transfer) parts(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := t.p.c.partSize()
	n := int((t.size - t.off + ps - 1) / ps)
	type result struct {
		buf []byte
		err error
	}
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	launched := make(chan int, 1)
	start := t.off // t.off moves as parts are written
	go func() {
		i := 0
		for ; i < n && t.p.acquire(ctx) == nil; i++ {
			from := start + int64(i)*ps
			to := min(from+ps, t.size) - 1
			done := results[i]
			go func() {
				buf, err := t.fetchPart(ctx, from, to)
				done <- result{buf, err}
			}()
		}
		launched <- i
	}()
	written := 0
	defer func() {
		// Parts still in flight give their slots back once they end.
		cancel()
		last := <-launched
		for i := written; i < last; i++ {
			<-results[i]
			t.p.release()
		}
	}()
	for ; written < n; written++ {
		var r result
		select {
		case r = <-results[written]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err == nil {
			_, r.err = t.file.Write(r.buf)
			if r.err != nil {
				r.err = t.p.writeError(sibling{Name: t.name}, t.file.Name(), t.off, t.size, r.err)
			}
		}
		t.p.release()
		if r.err != nil {
			written++
			return r.err
		}
		t.hash.Write(r.buf)
		t.off += int64(len(r.buf))
	}
	return nil
}

// fetchPart reads bytes [from, to] into memory, retrying a broken
// connection; errNoRanges when the server answers with the whole file.
func (t *transfer) fetchPart(ctx context.Context, from, to int64) ([]byte, error) {
	c := t.p.c
	buf := make([]byte, to-from+1)
	for try := 0; ; try++ {
		resp, err := t.get(ctx, from, to)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, errNoRanges
		}
		n, err := io.ReadFull(progressReader{resp.Body, t.p.progress}, buf)
		resp.Body.Close()
		if err == nil {
			return buf, nil
		}
		t.p.progress.Add(-int64(n)) // fetched again below
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if try >= c.retries() {
			return nil, fmt.Errorf("%s: %s: bytes %d-%d broke off: %v; pull again to resume", t.p.id, t.name, from, to, err)
		}
		if err := sleep(ctx, c.retryWait(try)); err != nil {
			return nil, err
		}
	}
}

type progressReader struct {
	r io.Reader
	p Progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.Add(int64(n))
	return n, err
}

func (p *puller) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *puller) release() { <-p.slots }
