package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrite writes two tensors and reads the file back by hand: header
// entries, 8-byte aligned data, the bytes in order, the metadata.
func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.safetensors")
	infos := []TensorInfo{{Name: "a", DType: "BF16", Shape: []int64{3}}, {Name: "b", DType: "F8_E4M3", Shape: []int64{2, 2}}}
	data := [][]byte{{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10}}
	if err := Write(path, map[string]string{"format": "mlx"}, infos, func(i int, w io.Writer) error {
		_, err := w.Write(data[i])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", 8+n)
	}
	var h map[string]struct {
		DType   string  `json:"dtype"`
		Shape   []int64 `json:"shape"`
		Offsets [2]int  `json:"data_offsets"`
	}
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b[8:8+n]), `"__metadata__":{"format":"mlx"}`) {
		t.Errorf("header %s has no metadata", b[8:8+n])
	}
	body := b[8+n:]
	for i, info := range infos {
		e := h[info.Name]
		if e.DType != info.DType || len(e.Shape) != len(info.Shape) || string(body[e.Offsets[0]:e.Offsets[1]]) != string(data[i]) {
			t.Errorf("%s: %+v, data %v", info.Name, e, body[e.Offsets[0]:e.Offsets[1]])
		}
	}
	if len(body) != 10 {
		t.Errorf("%d data bytes, want 10", len(body))
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	none := func(int, io.Writer) error { return nil }
	if err := Write(filepath.Join(dir, "a"), nil, []TensorInfo{{Name: "x", DType: "Q4", Shape: []int64{1}}}, none); err == nil || !strings.Contains(err.Error(), `tensor x: unknown dtype "Q4"`) {
		t.Errorf("unknown dtype: %v", err)
	}
	if err := Write(filepath.Join(dir, "b"), nil, []TensorInfo{{Name: "y", DType: "F32", Shape: []int64{2}}}, none); err == nil || !strings.Contains(err.Error(), "tensor y: wrote 0 bytes, want 8") {
		t.Errorf("short tensor: %v", err)
	}
}
