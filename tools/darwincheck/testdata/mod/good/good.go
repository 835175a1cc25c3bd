//go:build darwin

// Package good is a darwincheck fixture that is clean: it uses darwinkit only
// through methods that do not wrap protocol objects, plus cgo.
package good

/*
#cgo LDFLAGS: -framework Metal
#include <stdint.h>
static uint64_t twice(uint64_t x) { return 2 * x; }
*/
import "C"

import "github.com/progrium/darwinkit/macos/metal"

// Width returns twice the pipeline's thread execution width, through cgo.
func Width(p metal.ComputePipelineStateObject) uint64 {
	return uint64(C.twice(C.uint64_t(p.ThreadExecutionWidth())))
}
