package experts

import (
	"fmt"
)

// Extent is one contiguous byte range of a model file.
type Extent struct {
	File   string
	Offset int64
	Length int64
}

// LayerSpec describes the routed experts of one MoE layer to the pager.
//
// Experts[e] lists the byte ranges of expert e in a fixed part order (for an
// MLX checkpoint: gate_proj weight, scales, biases, up_proj ..., down_proj ...).
// Every expert of a layer lists the same number of parts with the same
// lengths, so one LayerLayout describes every slot of the layer.
type LayerSpec struct {
	Experts [][]Extent
}

// Alignments of the slot memory.
const (
	// PartAlign is the alignment of each part within a slot, enough for any
	// vector load a kernel makes.
	PartAlign = 64
	// SlotAlign is the alignment of each slot within its layer's pool (a page,
	// and the O_DIRECT block size).
	SlotAlign = 4096
)

// LayerLayout says where the parts of an expert lie inside a slot; it is the
// same for every slot of a layer. Slot s of a layer occupies
// pool[s*SlotStride : s*SlotStride+SlotBytes], and part i of the expert in it
// starts PartOffsets[i] bytes into the slot.
type LayerLayout struct {
	PartOffsets []int64
	PartLengths []int64
	SlotBytes   int64
	SlotStride  int64
}

// NewLayerLayout checks that every expert of spec has the same part lengths
// and computes the slot layout. layer is used in error messages only.
func NewLayerLayout(layer int, spec LayerSpec) (LayerLayout, error) {
	if len(spec.Experts) == 0 {
		return LayerLayout{}, fmt.Errorf("experts: layer %d: no experts described", layer)
	}
	first := spec.Experts[0]
	if len(first) == 0 {
		return LayerLayout{}, fmt.Errorf("experts: layer %d expert 0: no byte extents", layer)
	}
	for e, parts := range spec.Experts {
		if len(parts) != len(first) {
			return LayerLayout{}, fmt.Errorf("experts: layer %d expert %d: %d parts, expert 0 has %d", layer, e, len(parts), len(first))
		}
		for i, x := range parts {
			if x.Length != first[i].Length {
				return LayerLayout{}, fmt.Errorf("experts: layer %d expert %d part %d: %d bytes, expert 0 has %d", layer, e, i, x.Length, first[i].Length)
			}
			if x.Length <= 0 || x.Offset < 0 || x.File == "" {
				return LayerLayout{}, fmt.Errorf("experts: layer %d expert %d part %d: bad extent %+v (want a file, offset >= 0, length > 0)", layer, e, i, x)
			}
		}
	}
	l := LayerLayout{PartOffsets: make([]int64, len(first)), PartLengths: make([]int64, len(first))}
	var at int64
	for i, x := range first {
		at = alignUp(at, PartAlign)
		l.PartOffsets[i] = at
		l.PartLengths[i] = x.Length
		at += x.Length
	}
	l.SlotBytes = at
	l.SlotStride = alignUp(at, SlotAlign)
	return l, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
