//go:build darwin

// Package withtests is a darwincheck fixture whose package code is clean and
// whose tests hold planted problems (checked with -tests only).
package withtests

import "github.com/progrium/darwinkit/macos/metal"

// Width returns the pipeline's thread execution width.
func Width(p metal.ComputePipelineStateObject) uint {
	return p.ThreadExecutionWidth()
}
