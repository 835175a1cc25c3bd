//go:build darwin

package withtests

import (
	"testing"

	"github.com/progrium/darwinkit/macos/metal"
)

func TestWidth(t *testing.T) {
	var enc metal.ComputeCommandEncoderObject
	var p metal.ComputePipelineStateObject
	enc.SetComputePipelineState(p) // PLANT: panic
	var w string = Width(p)        // PLANT: type
	_ = w
}
