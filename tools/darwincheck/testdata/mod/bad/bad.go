//go:build darwin

// Package bad is a darwincheck fixture with one planted type error and one
// planted call to a darwinkit method that panics at run time.
package bad

/*
#cgo LDFLAGS: -framework Metal
*/
import "C"

import "github.com/progrium/darwinkit/macos/metal"

// Encode sets a pipeline through darwinkit's generated method, which panics
// inside objc.WrapAsProtocol.
func Encode(enc metal.ComputeCommandEncoderObject, p metal.ComputePipelineStateObject) {
	enc.SetComputePipelineState(p) // PLANT: panic
}

// EncodeViaInterface does the same through the P* interface.
func EncodeViaInterface(enc metal.PComputeCommandEncoder, p metal.ComputePipelineStateObject) {
	enc.SetComputePipelineState(p) // PLANT: panic
}

// End calls a method that darwinkit v0.5.0 does not generate.
func End(enc metal.ComputeCommandEncoderObject) {
	enc.EndEncoding() // PLANT: type
}

// Threads uses cgo; FakeImportC must accept it.
func Threads(p metal.ComputePipelineStateObject) C.int {
	return C.int(p.MaxTotalThreadsPerThreadgroup())
}
