package model_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// brokenFixture copies qwen3_moe-4bit and lets edit damage it.
func brokenFixture(t *testing.T, edit func(dir string)) string {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	edit(dir)
	return dir
}

// writeSafetensors writes a file with the given header JSON and data bytes.
func writeSafetensors(t *testing.T, path string, header string, data []byte) {
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(header)))
	buf.WriteString(header)
	buf.Write(data)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	st := func(dir string) string { return filepath.Join(dir, "model.safetensors") }
	cases := []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"missing config", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "config.json")) }, "config.json"},
		{"malformed config", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o644)
		}, "not a JSON object"},
		{"unknown model_type", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["model_type"] = "llama9" })
		}, "is not supported (supported: "},
		{"unsupported bits", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["quantization"].(map[string]any)["bits"] = 7 })
		}, "7-bit quantization is not supported"},
		{"unsupported group size", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["quantization"].(map[string]any)["group_size"] = 48 })
		}, "group size 48 is not supported"},
		{"shape not matching config", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["moe_intermediate_size"] = 96 })
		}, "expected [16 96 16]"},
		{"header not JSON", func(t *testing.T, dir string) { writeSafetensors(t, st(dir), "[1,2", nil) }, "header is not a JSON object"},
		{"header too large", func(t *testing.T, dir string) {
			var buf bytes.Buffer
			binary.Write(&buf, binary.LittleEndian, uint64(1<<40))
			os.WriteFile(st(dir), buf.Bytes(), 0o644)
		}, "exceeds the"},
		{"offsets past end", func(t *testing.T, dir string) {
			writeSafetensors(t, st(dir), `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, make([]byte, 8))
		}, "past the end of the data"},
		{"overlapping tensors", func(t *testing.T, dir string) {
			writeSafetensors(t, st(dir), `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12))
		}, "overlap"},
		{"size not matching dtype", func(t *testing.T, dir string) {
			writeSafetensors(t, st(dir), `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8))
		}, "needs 12 bytes"},
		{"byte size overflowing", func(t *testing.T, dir string) {
			writeSafetensors(t, st(dir), `{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}`, nil)
		}, "invalid shape [4611686018427387904]"},
		{"tensor missing", func(t *testing.T, dir string) {
			writeSafetensors(t, st(dir), `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8))
		}, "is missing"},
		{"truncated file", func(t *testing.T, dir string) {
			info, _ := os.Stat(st(dir))
			os.Truncate(st(dir), info.Size()-1000)
		}, "truncated"},
		{"no weights", func(t *testing.T, dir string) { os.Remove(st(dir)) }, "no *.safetensors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := brokenFixture(t, func(dir string) { tc.edit(t, dir) })
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatalf("loaded a broken checkpoint")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
