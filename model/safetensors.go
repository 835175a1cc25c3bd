package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mlx-moe/mlx-moe/internal/gzfile"
)

// DType is a tensor element type as safetensors spells it.
type DType string

// Element types read by the loader.
const (
	U32     DType = "U32"
	I32     DType = "I32"
	BF16    DType = "BF16"
	F16     DType = "F16"
	F32     DType = "F32"
	F8E4M3  DType = "F8_E4M3"
	U8      DType = "U8"
	I64     DType = "I64"
	maxHead       = 100 << 20 // a header larger than this is not a real checkpoint
)

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case U32, I32, F32:
		return 4
	case BF16, F16:
		return 2
	case F8E4M3, U8:
		return 1
	case I64:
		return 8
	}
	return 0
}

// TensorInfo says where one tensor's bytes are: Offset is absolute within
// File, so the expert pager can pread them directly.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int
	File   string
	Offset int64
	Length int64
}

// Elements is the product of the shape.
func (t *TensorInfo) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Index maps tensor names to their place in one or more safetensors shards.
// Only headers are read at open; tensor bytes are read on demand with
// ReadAt, never whole files.
type Index struct {
	Dir     string
	tensors map[string]*TensorInfo
	files   map[string]*os.File
}

// OpenIndex reads the safetensors headers of the checkpoint in dir: the
// shards listed by model.safetensors.index.json, or else every *.safetensors
// file in the directory.
func OpenIndex(dir string) (*Index, error) {
	shards, err := shardFiles(dir)
	if err != nil {
		return nil, err
	}
	ix := &Index{Dir: dir, tensors: map[string]*TensorInfo{}, files: map[string]*os.File{}}
	for _, path := range shards {
		f, err := os.Open(path)
		if err != nil {
			ix.Close()
			return nil, err
		}
		ix.files[path] = f
		infos, err := readHeader(f, path)
		if err != nil {
			ix.Close()
			return nil, err
		}
		for _, t := range infos {
			if prev, dup := ix.tensors[t.Name]; dup {
				ix.Close()
				return nil, fmt.Errorf("tensor %s is in both %s and %s", t.Name, prev.File, t.File)
			}
			ix.tensors[t.Name] = t
		}
	}
	return ix, nil
}

func shardFiles(dir string) ([]string, error) {
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	if data, err := os.ReadFile(indexPath); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("%s: %v", indexPath, err)
		}
		seen := map[string]bool{}
		var files []string
		for _, f := range idx.WeightMap {
			if strings.Contains(f, "/") || strings.Contains(f, `\`) {
				return nil, fmt.Errorf("%s: shard name %q must be a plain file name", indexPath, f)
			}
			if !seen[f] {
				seen[f] = true
				files = append(files, filepath.Join(dir, f))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: weight_map is empty", indexPath)
		}
		return files, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		if files, err = gunzipShards(dir); err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.safetensors files and no model.safetensors.index.json", dir)
	}
	sort.Strings(files)
	return files, nil
}

// gunzipShards handles a directory that holds its shards gzip-compressed
// (*.safetensors.gz, as this repository's testdata does): they are
// unpacked once into the user cache directory, keyed by their path, size
// and modification time, since tensors are read by file offset.
func gunzipShards(dir string) ([]string, error) {
	gz, err := filepath.Glob(filepath.Join(dir, "*.safetensors.gz"))
	if err != nil || len(gz) == 0 {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	io.WriteString(h, abs)
	for _, f := range gz {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, ";%s:%d:%d", filepath.Base(f), st.Size(), st.ModTime().UnixNano())
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("%s: shards are gzip-compressed and there is no cache directory to unpack them: %v", dir, err)
	}
	out := filepath.Join(cache, "mlx-moe", "gunzip", hex.EncodeToString(h.Sum(nil))[:16])
	var files []string
	for _, f := range gz {
		files = append(files, filepath.Join(out, strings.TrimSuffix(filepath.Base(f), ".gz")))
	}
	if _, err := os.Stat(out); err == nil {
		return files, nil
	}
	// Unpack beside the final place and rename, so a crash or a concurrent
	// run never leaves a half-written shard under the final name.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".unpack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, f := range gz {
		in, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		err = gzfile.Extract(in, f, tmp)
		in.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if _, statErr := os.Stat(out); statErr != nil {
			return nil, err
		}
	}
	return files, nil
}

// readHeader parses and validates the header of one shard.
func readHeader(f *os.File, path string) ([]*TensorInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return ParseHeader(f, st.Size(), path)
}

// ParseHeader parses a safetensors header from r, a file of fileSize bytes
// named path (for error messages and TensorInfo.File). It checks that every
// tensor's byte range matches its dtype and shape, lies inside the file and
// overlaps no other.
func ParseHeader(r io.ReaderAt, fileSize int64, path string) ([]*TensorInfo, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%s: too short for a safetensors header (%d bytes)", path, fileSize)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHead {
		return nil, fmt.Errorf("%s: header length %d exceeds the %d-byte limit", path, n, maxHead)
	}
	if int64(n)+8 > fileSize {
		return nil, fmt.Errorf("%s: header length %d runs past the end of the file (%d bytes): truncated?", path, n, fileSize)
	}
	head := make([]byte, n)
	if _, err := r.ReadAt(head, 8); err != nil {
		return nil, fmt.Errorf("%s: reading header: %v", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(head, &raw); err != nil {
		return nil, fmt.Errorf("%s: header is not a JSON object: %v", path, err)
	}
	base := int64(8 + n)
	dataSize := fileSize - base
	var infos []*TensorInfo
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   DType    `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%s: tensor %s: bad header entry: %v", path, name, err)
		}
		if e.DType.Size() == 0 {
			return nil, fmt.Errorf("%s: tensor %s: unsupported dtype %q", path, name, e.DType)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] > e.Offsets[1] {
			return nil, fmt.Errorf("%s: tensor %s: data_offsets must be [begin, end], got %v", path, name, e.Offsets)
		}
		if e.Offsets[1] > uint64(dataSize) {
			return nil, fmt.Errorf("%s: tensor %s: data ends at %d, past the end of the data (%d bytes): truncated file?", path, name, e.Offsets[1], dataSize)
		}
		elems := uint64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && elems > (1<<62)/uint64(d)) {
				return nil, fmt.Errorf("%s: tensor %s: invalid shape %v", path, name, e.Shape)
			}
			elems *= uint64(d)
		}
		if elems > (1<<62)/uint64(e.DType.Size()) {
			// elems*size would overflow the byte count compared below.
			return nil, fmt.Errorf("%s: tensor %s: invalid shape %v", path, name, e.Shape)
		}
		if want := elems * uint64(e.DType.Size()); want != e.Offsets[1]-e.Offsets[0] {
			return nil, fmt.Errorf("%s: tensor %s: %s%v needs %d bytes, data_offsets give %d", path, name, e.DType, e.Shape, want, e.Offsets[1]-e.Offsets[0])
		}
		infos = append(infos, &TensorInfo{Name: name, DType: e.DType, Shape: e.Shape, File: path,
			Offset: base + int64(e.Offsets[0]), Length: int64(e.Offsets[1] - e.Offsets[0])})
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Offset < infos[j].Offset })
	for i := 1; i < len(infos); i++ {
		if a, b := infos[i-1], infos[i]; a.Offset+a.Length > b.Offset {
			return nil, fmt.Errorf("%s: tensors %s and %s overlap", path, a.Name, b.Name)
		}
	}
	return infos, nil
}

// Tensor returns the tensor called name.
func (ix *Index) Tensor(name string) (*TensorInfo, bool) {
	t, ok := ix.tensors[name]
	return t, ok
}

// Names lists every tensor name, sorted.
func (ix *Index) Names() []string {
	names := make([]string, 0, len(ix.tensors))
	for n := range ix.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ReadBytes reads a tensor's raw bytes.
func (ix *Index) ReadBytes(t *TensorInfo) ([]byte, error) {
	buf := make([]byte, t.Length)
	return buf, ix.ReadInto(t, buf)
}

// ReadInto reads a tensor's raw bytes into buf (t.Length bytes).
func (ix *Index) ReadInto(t *TensorInfo, buf []byte) error {
	f := ix.files[t.File]
	if f == nil {
		return fmt.Errorf("tensor %s: shard %s is not open", t.Name, t.File)
	}
	if _, err := f.ReadAt(buf[:t.Length], t.Offset); err != nil {
		return fmt.Errorf("tensor %s: reading %d bytes at %d of %s: %v", t.Name, t.Length, t.Offset, t.File, err)
	}
	return nil
}

// readExtent reads a byte range of one of the index's shards into buf
// (x.Length bytes).
func (ix *Index) readExtent(x Extent, buf []byte) error {
	f := ix.files[x.File]
	if f == nil {
		return fmt.Errorf("shard %s is not open", x.File)
	}
	if _, err := f.ReadAt(buf[:x.Length], x.Offset); err != nil {
		return fmt.Errorf("reading %d bytes at %d of %s: %v", x.Length, x.Offset, x.File, err)
	}
	return nil
}

// Close closes the shard files.
func (ix *Index) Close() error {
	for _, f := range ix.files {
		f.Close()
	}
	ix.files = nil
	return nil
}
