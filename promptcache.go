package mlxmoe

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// Prompt states on disk (Options.PromptCacheDir): the snapshots taken at
// cache points (where an agent's system prompt and tools end) are written
// to files, and a model loaded later with the same directory starts with
// them, so a restart does not prefill a 20-40k-token agent prompt again.
// A file holds one line of magic, one JSON header line (the model's
// fingerprint, the tokens, the tensor shapes) and the tensors as
// little-endian float32, then the KV caches as stored (half precision or
// quantized codes with their scales and biases). Files whose fingerprint is not the loaded model's
// (other weights, config or chat template) are left alone.

const promptCacheMagic = "mlx-moe prompt cache 1\n"

type promptFileHeader struct {
	Model   string   `json:"model"`
	Tokens  []int32  `json:"tokens"`
	Tensors [][2]int `json:"tensors"` // rows, cols of each tensor, in cache order
	// KV: format, rows, cols, group of each KV cache store, in cache order.
	KV [][4]int `json:"kv,omitempty"`
}

// cacheParts are a cache's tensors and KV stores in the order the model
// made them.
type cacheParts struct {
	tensors []*graph.Tensor
	kvs     []*graph.KV
}

// recorder is an executor that notes the tensors and KV stores made
// through it, so that a cache's parts are known in the order the model
// created them. It stores compact KV caches when its executor does.
type recorder struct {
	graph.Executor
	cacheParts
}

func (r *recorder) NewTensor(rows, cols int) *graph.Tensor {
	t := r.Executor.NewTensor(rows, cols)
	r.tensors = append(r.tensors, t)
	return t
}

// NewKV makes a KV store on the executor (Load keeps Model.KVFormat
// float32 on executors without them, so the model asks only those that
// have them); the other KV methods act on stores NewKV made.
func (r *recorder) NewKV(rows, cols int, f kernels.KVFormat, group int) (*graph.KV, error) {
	ke, ok := r.Executor.(graph.KVExecutor)
	if !ok {
		return nil, fmt.Errorf("the %s executor stores no %v KV cache", r.Name(), f)
	}
	c, err := ke.NewKV(rows, cols, f, group)
	if err == nil {
		r.kvs = append(r.kvs, c)
	}
	return c, err
}

func (r *recorder) kv() graph.KVExecutor { return r.Executor.(graph.KVExecutor) }

func (r *recorder) FreeKV(c *graph.KV) { r.kv().FreeKV(c) }

func (r *recorder) StoreKV(dst *graph.KV, row0 int, src *graph.Tensor, n int) {
	r.kv().StoreKV(dst, row0, src, n)
}

func (r *recorder) CopyKV(dst, src *graph.KV, n int) { r.kv().CopyKV(dst, src, n) }

func (r *recorder) AttentionKV(out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	r.kv().AttentionKV(out, q, k, kc0, v, vc0, n, pos0, heads, kvHeads, dk, dv, scale)
}

// newCache allocates a cache for maxLen positions and returns its parts.
func (m *Model) newCache(maxLen int) (*model.Cache, cacheParts) {
	r := &recorder{Executor: m.exec}
	c := m.Model.NewCache(r, maxLen)
	return c, r.cacheParts
}

// kvData is a KV store's arrays, in file order.
func kvData(c *graph.KV) []any {
	switch c.Format {
	case kernels.KVF32:
		return []any{c.F32}
	case kernels.KVF16:
		return []any{c.Half}
	}
	return []any{c.Q, c.Scales, c.Biases}
}

// fingerprint names the model a cache state belongs to: its config, chat
// template and checkpoint files (names and sizes).
func (m *Model) fingerprint() (string, error) {
	h := sha256.New()
	cfg, err := os.ReadFile(filepath.Join(m.Dir, "config.json"))
	if err != nil {
		return "", err
	}
	h.Write(cfg)
	io.WriteString(h, m.Template.Source())
	shards, _ := filepath.Glob(filepath.Join(m.Dir, "*.safetensors*"))
	sort.Strings(shards)
	for _, s := range shards {
		if info, err := os.Stat(s); err == nil {
			fmt.Fprintf(h, "\n%s %d", filepath.Base(s), info.Size())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// promptFile is where the state after tokens is kept.
func (m *Model) promptFile(fp string, tokens []int32) string {
	h := sha256.New()
	io.WriteString(h, fp)
	binary.Write(h, binary.LittleEndian, tokens)
	return filepath.Join(m.opts.PromptCacheDir, hex.EncodeToString(h.Sum(nil)[:12])+".mlxcache")
}

// savePrompt writes a snapshot's state (its tensors synced) to the cache
// directory, replacing the file atomically.
func (m *Model) savePrompt(fp string, sn *snapshot) error {
	path := m.promptFile(fp, sn.tokens)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(m.opts.PromptCacheDir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(m.opts.PromptCacheDir, ".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 1<<20)
	hdr := promptFileHeader{Model: fp, Tokens: sn.tokens}
	for _, t := range sn.parts.tensors {
		hdr.Tensors = append(hdr.Tensors, [2]int{t.Rows, t.Cols})
	}
	for _, c := range sn.parts.kvs {
		hdr.KV = append(hdr.KV, [4]int{int(c.Format), c.Rows, c.Cols, c.Group})
	}
	line, _ := json.Marshal(hdr)
	w.WriteString(promptCacheMagic)
	w.Write(append(line, '\n'))
	var buf []byte
	for _, t := range sn.parts.tensors {
		buf = slices.Grow(buf[:0], 4*t.Cols)[:4*t.Cols]
		for r := range t.Rows {
			row := t.Data[r*t.RowStride() : r*t.RowStride()+t.Cols]
			for i, v := range row {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			w.Write(buf)
		}
	}
	for _, c := range sn.parts.kvs {
		for _, d := range kvData(c) {
			if err := binary.Write(w, binary.LittleEndian, d); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// loadPrompt reads a cache file made for the model with fingerprint fp into
// a new snapshot. A file for another model is errNotThisModel.
func (m *Model) loadPrompt(path, fp string) (*snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(promptCacheMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != promptCacheMagic {
		return nil, fmt.Errorf("%s: not an mlx-moe prompt cache file", path)
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: reading the header: %w", path, err)
	}
	var hdr promptFileHeader
	if err := json.Unmarshal(line, &hdr); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if hdr.Model != fp {
		return nil, errNotThisModel
	}
	n := len(hdr.Tokens)
	if n == 0 || n >= m.ctxLen {
		return nil, fmt.Errorf("%s: %d tokens do not fit the context of %d", path, n, m.ctxLen)
	}
	cache, parts := m.newCache(n)
	tensors := parts.tensors
	if len(tensors) != len(hdr.Tensors) || len(parts.kvs) != len(hdr.KV) {
		cache.Free(m.exec)
		return nil, fmt.Errorf("%s: %d tensors and %d KV caches, the model's cache has %d and %d (saved with another --kv-bits?)",
			path, len(hdr.Tensors), len(hdr.KV), len(tensors), len(parts.kvs))
	}
	buf := make([]byte, 0)
	for i, t := range tensors {
		if hdr.Tensors[i] != [2]int{t.Rows, t.Cols} {
			cache.Free(m.exec)
			return nil, fmt.Errorf("%s: tensor %d is %v, the model's is [%d %d]", path, i, hdr.Tensors[i], t.Rows, t.Cols)
		}
		buf = slices.Grow(buf[:0], 4*t.Cols)[:4*t.Cols]
		for row := range t.Rows {
			if _, err := io.ReadFull(r, buf); err != nil {
				cache.Free(m.exec)
				return nil, fmt.Errorf("%s: tensor %d is cut short: %w", path, i, err)
			}
			dst := t.Data[row*t.RowStride() : row*t.RowStride()+t.Cols]
			for k := range dst {
				dst[k] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*k:]))
			}
		}
	}
	for i, c := range parts.kvs {
		if want := [4]int{int(c.Format), c.Rows, c.Cols, c.Group}; hdr.KV[i] != want {
			cache.Free(m.exec)
			return nil, fmt.Errorf("%s: KV cache %d is %v (format, rows, cols, group), the model's is %v", path, i, hdr.KV[i], want)
		}
		for _, d := range kvData(c) {
			if err := binary.Read(r, binary.LittleEndian, d); err != nil {
				cache.Free(m.exec)
				return nil, fmt.Errorf("%s: KV cache %d is cut short: %w", path, i, err)
			}
		}
	}
	cache.Len = n
	return &snapshot{tokens: hdr.Tokens, cache: cache, parts: parts, bytes: m.Model.CacheBytes(n), point: true}, nil
}

var errNotThisModel = errors.New("prompt cache file of another model")

// loadPrompts fills the session with the cache directory's states for this
// model, newest first, as far as the memory budget allows.
func (s *Session) loadPrompts() {
	m := s.m
	fp, err := m.fingerprint()
	if err != nil {
		fmt.Fprintf(m.opts.Log, "prompt cache: %v; not using %s\n", err, m.opts.PromptCacheDir)
		return
	}
	s.fingerprint = fp
	paths, _ := filepath.Glob(filepath.Join(m.opts.PromptCacheDir, "*.mlxcache"))
	mtime := func(p string) int64 {
		if info, err := os.Stat(p); err == nil {
			return info.ModTime().UnixNano()
		}
		return 0
	}
	sort.Slice(paths, func(i, j int) bool { return mtime(paths[i]) > mtime(paths[j]) })
	budget := m.promptBudget()
	for _, p := range paths {
		sn, err := m.loadPrompt(p, fp)
		switch {
		case errors.Is(err, errNotThisModel):
			continue
		case err != nil:
			fmt.Fprintf(m.opts.Log, "prompt cache: %v\n", err)
			continue
		}
		if s.bytes+sn.bytes > budget {
			sn.cache.Free(m.exec)
			continue
		}
		s.clock++
		sn.used = s.clock
		s.snaps = append(s.snaps, sn)
		s.bytes += sn.bytes
	}
	if len(s.snaps) > 0 {
		fmt.Fprintf(m.opts.Log, "prompt cache: %d cached prompt states from %s (%.1f MB)\n", len(s.snaps), m.opts.PromptCacheDir,
			float64(s.bytes)/1e6)
	}
	s.stats.snapshots.Store(int64(len(s.snaps)))
	s.stats.bytes.Store(s.bytes)
}
