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
	// PartAlign is the alignment of each part within a slot laid out by
	// NewLayerLayout, enough for any vector load a kernel makes. A part that
	// NewDirectLayout places for an in-place read keeps its file offset's
	// alignment instead (at least 8 bytes), as memory-mapped parts do.
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

	// inPlace[i] says that part i sits at its file offset's remainder
	// modulo SlotAlign inside a region of its own, so that an O_DIRECT read
	// of its block-aligned cover can land in the slot (NewDirectLayout).
	inPlace []bool
}

// NewLayerLayout checks that every expert of spec has the same part lengths
// and computes the slot layout: parts packed at PartAlign. layer is used in
// error messages only.
func NewLayerLayout(layer int, spec LayerSpec) (LayerLayout, error) {
	return newLayout(layer, spec, false)
}

// inPlaceAlign is the least alignment of a part placed for in-place reads:
// such a part keeps its file offset's alignment, which in a safetensors
// file is the tensor's (at least 8 bytes for MLX checkpoints), below
// PartAlign. The kernels read words, and they already read file-aligned
// parts under the os policy (views of a memory map).
const inPlaceAlign = 8

// NewDirectLayout is the slot layout for a pager that reads with O_DIRECT.
// O_DIRECT reads whole blocks into block-aligned memory, so a part can be
// read straight into the slot only if, inside the slot, it starts at the
// same offset modulo SlotAlign as in the file and has the blocks around it
// to itself. Each part whose file offset has the same remainder modulo
// SlotAlign for every expert (a multiple of 8, as in stacked MLX tensors
// whose per-expert slices are whole blocks) gets such a region: at most
// 2*SlotAlign bytes more per part. The other parts are packed as in
// NewLayerLayout and read through a bounce buffer.
func NewDirectLayout(layer int, spec LayerSpec) (LayerLayout, error) {
	return newLayout(layer, spec, true)
}

func newLayout(layer int, spec LayerSpec, direct bool) (LayerLayout, error) {
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
	if direct {
		l.inPlace = make([]bool, len(first))
	}
	var at int64
	for i, x := range first {
		head := x.Offset % SlotAlign
		if direct && head%inPlaceAlign == 0 && samePhase(spec, i, head) {
			// A region of whole blocks with the part at the file's phase.
			at = alignUp(at, SlotAlign) + head
			l.inPlace[i] = true
			l.PartOffsets[i] = at
			at = alignUp(at+x.Length, SlotAlign)
		} else {
			at = alignUp(at, PartAlign)
			l.PartOffsets[i] = at
			at += x.Length
		}
		l.PartLengths[i] = x.Length
	}
	l.SlotBytes = at
	l.SlotStride = alignUp(at, SlotAlign)
	return l, nil
}

// samePhase reports whether part i of every expert starts head bytes past a
// SlotAlign boundary of its file.
func samePhase(spec LayerSpec, i int, head int64) bool {
	for _, parts := range spec.Experts {
		if parts[i].Offset%SlotAlign != head {
			return false
		}
	}
	return true
}

// InPlace reports whether part i is laid out to be read straight into the
// slot with O_DIRECT (see NewDirectLayout).
func (l LayerLayout) InPlace(i int) bool { return i >= 0 && i < len(l.inPlace) && l.inPlace[i] }

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
