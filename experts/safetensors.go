package experts

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
	DType string // U32, BF16, F16, F32, U8, I32
	Shape []int64
}

var dtypeBytes = map[string]int64{"U8": 1, "BF16": 2, "F16": 2, "U32": 4, "I32": 4, "F32": 4}

// Bytes is the size of the tensor's data.
func (t TensorInfo) Bytes() int64 {
	n := dtypeBytes[t.DType]
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// WriteSafetensors streams a safetensors file: the header, then the data of
// each tensor in order, written by fill(i, w), which must write exactly
// tensors[i].Bytes() bytes. Nothing but a write buffer is held in memory.
func WriteSafetensors(path string, meta map[string]string, tensors []TensorInfo, fill func(i int, w io.Writer) error) (err error) {
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
			return fmt.Errorf("experts: safetensors %s: tensor %s: unknown dtype %q", path, t.Name, t.DType)
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
		return fmt.Errorf("experts: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("experts: %w", cerr)
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
			return fmt.Errorf("experts: %s: tensor %s: %w", path, t.Name, err)
		}
		if cw.n != t.Bytes() {
			return fmt.Errorf("experts: %s: tensor %s: wrote %d bytes, want %d", path, t.Name, cw.n, t.Bytes())
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("experts: %w", err)
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
