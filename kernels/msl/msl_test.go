package msl

import (
	"regexp"
	"strings"
	"testing"
)

// newLibraryWithSource has no file system: a shader may include only
// <metal_stdlib>, never a local header.
func TestShadersAreSelfContained(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no shaders embedded")
	}
	include := regexp.MustCompile(`(?m)^\s*#\s*include\s*(\S+)`)
	for _, name := range names {
		src, err := Source(name)
		if err != nil {
			t.Fatal(err)
		}
		incs := include.FindAllStringSubmatch(src, -1)
		if len(incs) != 1 || incs[0][1] != "<metal_stdlib>" {
			t.Errorf("%s: includes %v, want exactly <metal_stdlib>", name, incs)
		}
		if !strings.Contains(src, "kernel void") {
			t.Errorf("%s: defines no kernel", name)
		}
	}
	if _, err := Source("missing.metal"); err == nil {
		t.Error("Source of a missing file returned no error")
	}
}
