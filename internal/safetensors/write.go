// Package safetensors writes safetensors files: the one writer behind the
// synthetic checkpoints (internal/synth) and the test fixtures
// (internal/fixture). Reading is the model package's Index.
package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// TensorInfo is one tensor of a safetensors file being written.
type TensorInfo struct {
	Name  string
	DType string // a key of dtypeBytes: U32, BF16, F16, F32, F8_E4M3, ...
	Shape []int64
}

// dtypeBytes is the element size of each dtype the format names.
var dtypeBytes = map[string]int64{"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"BF16": 2, "F16": 2, "U16": 2, "I16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}

// ElementBytes is the size of one element of dtype, 0 for an unknown dtype.
func ElementBytes(dtype string) int64 { return dtypeBytes[dtype] }

// Bytes is the size of the tensor's data.
func (t TensorInfo) Bytes() int64 {
	n := dtypeBytes[t.DType]
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Write streams a safetensors file: the header (meta as __metadata__ when
// not empty, data 8-byte aligned), then the data of each tensor in order,
// written by fill(i, w), which must write exactly tensors[i].Bytes() bytes.
// Nothing but a write buffer is held in memory.
func Write(path string, meta map[string]string, tensors []TensorInfo, fill func(i int, w io.Writer) error) (err error) {
	var h strings.Builder
	h.WriteByte('{')
	if len(meta) > 0 {
		b, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		fmt.Fprintf(&h, `"__metadata__":%s`, b)
	}
	var off int64
	for _, t := range tensors {
		if _, ok := dtypeBytes[t.DType]; !ok {
			return fmt.Errorf("safetensors: %s: tensor %s: unknown dtype %q", path, t.Name, t.DType)
		}
		if h.Len() > 1 {
			h.WriteByte(',')
		}
		name, _ := json.Marshal(t.Name)
		shape, _ := json.Marshal(t.Shape)
		if t.Shape == nil {
			shape = []byte("[]")
		}
		n := t.Bytes()
		fmt.Fprintf(&h, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, t.DType, shape, off, off+n)
		off += n
	}
	h.WriteByte('}')
	// Pad with spaces so the data starts 8-byte aligned, as the format advises.
	for (8+h.Len())%8 != 0 {
		h.WriteByte(' ')
	}

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("safetensors: %w", cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 4<<20)
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], uint64(h.Len()))
	w.Write(size[:])
	w.WriteString(h.String())
	for i, t := range tensors {
		cw := &countingWriter{w: w}
		if err := fill(i, cw); err != nil {
			return fmt.Errorf("safetensors: %s: tensor %s: %w", path, t.Name, err)
		}
		if cw.n != t.Bytes() {
			return fmt.Errorf("safetensors: %s: tensor %s: wrote %d bytes, want %d", path, t.Name, cw.n, t.Bytes())
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
