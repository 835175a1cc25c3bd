// Package msl holds the engine's Metal shaders (*.metal), embedded so that
// the Metal executor can build its pipelines from source at run time with
// newLibraryWithSource. Each file is self-contained (it includes only
// <metal_stdlib>) and documents its kernels' buffers and launch shapes;
// templated kernels are instantiated under [[host_name]]s such as
// "qmv_b4_g64_bf16".
//
// The compat directory is not part of the shaders: it lets
// kernels/mslharness compile them as C++ and run them on the CPU in CI.
package msl

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.metal
var shaders embed.FS

// Names returns the shader file names, sorted.
func Names() []string {
	names, _ := fs.Glob(shaders, "*.metal")
	sort.Strings(names)
	return names
}

// Source returns the text of the named shader file ("quantized.metal").
func Source(name string) (string, error) {
	b, err := shaders.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("no Metal shader %q (have %v)", name, Names())
	}
	return string(b), nil
}
