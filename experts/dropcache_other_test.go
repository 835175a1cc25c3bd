//go:build !linux

package experts

import "testing"

func dropCache(b *testing.B, _ string) { b.Skip("dropping one file's cached pages needs Linux") }
