// Package defaultmodel embeds the model mlx-moe runs when no --model is
// given: qwen3_next-code-tiny-4bit, a small Qwen3-Next-shaped MoE (64
// experts, top-4, shared expert, 6 layers, 4-bit) trained briefly on Python
// source. It is for trying the engine without a download; its code is
// childish but real.
//
// The files are embedded gzip-compressed and unpacked once into the user's
// cache directory, because the loader reads checkpoints by file offset.
package defaultmodel

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mlx-moe/mlx-moe/internal/gzfile"
)

// Name is the embedded model's name.
const Name = "qwen3_next-code-tiny-4bit"

//go:embed files
var files embed.FS

// Dir returns a directory holding the unpacked default model, unpacking it
// under cacheDir (normally CacheDir()) on first use.
func Dir(cacheDir string) (string, error) {
	sum, err := fingerprint()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "default-"+sum, Name)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("unpacking the default model: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return "", fmt.Errorf("unpacking the default model: %w", err)
	}
	defer os.RemoveAll(tmp)
	entries, _ := fs.ReadDir(files, "files")
	for _, e := range entries {
		if err := unpack("files/"+e.Name(), tmp); err != nil {
			return "", fmt.Errorf("unpacking the default model: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have unpacked it first.
		if _, statErr := os.Stat(filepath.Join(dir, ".complete")); statErr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("unpacking the default model: %w", err)
	}
	return dir, nil
}

// CacheDir is where mlx-moe keeps unpacked and derived files:
// $XDG_CACHE_HOME/mlx-moe or ~/.cache/mlx-moe.
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(base, "mlx-moe")
	return dir, os.MkdirAll(dir, 0o755)
}

// fingerprint names the unpacked copy after the embedded bytes so a new
// build never reuses a stale copy.
func fingerprint() (string, error) {
	h := sha256.New()
	entries, err := fs.ReadDir(files, "files")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s:%d;", e.Name(), info.Size())
	}
	cfg, _ := files.ReadFile("files/config.json")
	h.Write(cfg)
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func unpack(name, dir string) error {
	data, err := files.ReadFile(name)
	if err != nil {
		return err
	}
	return gzfile.Extract(bytes.NewReader(data), name, dir)
}
