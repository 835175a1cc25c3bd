// Package gzfile writes files that are stored gzip-compressed (embedded
// model files, test fixtures) back out in their plain form.
package gzfile

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Extract writes the contents of r, a file called name, into dir: a name
// ending in .gz is decompressed and written without the suffix.
func Extract(r io.Reader, name, dir string) error {
	base := filepath.Base(name)
	if strings.HasSuffix(base, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		r, base = gz, strings.TrimSuffix(base, ".gz")
	}
	out, err := os.Create(filepath.Join(dir, base))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
