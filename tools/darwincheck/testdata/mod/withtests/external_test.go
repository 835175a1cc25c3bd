//go:build darwin

package withtests_test

import (
	"testing"

	"example.com/darwincheckfixture/withtests"
	"github.com/progrium/darwinkit/macos/metal"
)

func TestExternal(t *testing.T) {
	var d metal.DeviceObject
	var f metal.FunctionObject
	_ = d.NewComputePipelineStateWithFunctionError(f, nil) // PLANT: panic
	_ = withtests.Width(metal.ComputePipelineStateObject{})
}
