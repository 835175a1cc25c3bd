package model

import (
	"fmt"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// ExpertSource describes where one MoE layer's routed experts are in the
// checkpoint without reading them, so the expert pager (or a memory map)
// can supply their bytes. Expert e is a list of byte ranges (Extents) in a
// fixed order: gate, up, down, each as weight[, scales, biases]; a slot
// holding those ranges at the given offsets is turned back into matrices by
// Views.
//
// A model loaded with LoadOptions.LazyExperts has an ExpertSource in place
// of each MoE layer's experts until AttachExperts replaces it.
type ExpertSource struct {
	Layer, Count int
	mats         [3]expertMatrix // gate, up, down
	// unpageable names a matrix whose dtype Views cannot read in place
	// (FP8, F16): such experts are only loaded resident, converted.
	unpageable string
}

// expertMatrix is one of an expert's three matrices.
type expertMatrix struct {
	rows, cols int
	quant      QuantParams
	f16Scales  bool
	dtype      DType // of the weight
	parts      []expertPart
}

// expertPart is one tensor's share of an expert: in a stacked tensor the
// range at stride*e + offset, or a tensor per expert.
type expertPart struct {
	stacked        *TensorInfo
	stride, offset int64
	length         int64
	perExpert      []*TensorInfo
}

// Extent is a byte range of a checkpoint file.
type Extent struct {
	File           string
	Offset, Length int64
}

func (p *expertPart) extent(e int) Extent {
	if p.stacked != nil {
		return Extent{p.stacked.File, p.stacked.Offset + int64(e)*p.stride + p.offset, p.length}
	}
	t := p.perExpert[e]
	return Extent{t.File, t.Offset + p.offset, p.length}
}

// Extents lists expert e's byte ranges in slot order.
func (s *ExpertSource) Extents(e int) []Extent {
	var out []Extent
	for i := range s.mats {
		for j := range s.mats[i].parts {
			out = append(out, s.mats[i].parts[j].extent(e))
		}
	}
	return out
}

// Views builds an expert's matrices over slot memory holding its extents at
// offsets (as many as Extents returns, each suitably aligned).
func (s *ExpertSource) Views(slot []byte, offsets []int64) (gate, up, down *kernels.Matrix) {
	var out [3]*kernels.Matrix
	k := 0
	for i := range s.mats {
		m := &s.mats[i]
		bufs := make([][]byte, len(m.parts))
		for j := range m.parts {
			bufs[j] = slot[offsets[k] : offsets[k]+m.parts[j].length]
			k++
		}
		x := &kernels.Matrix{Rows: m.rows, Cols: m.cols}
		switch {
		case m.quant.Bits != 0:
			x.Q = &kernels.Quant{Bits: m.quant.Bits, GroupSize: m.quant.GroupSize, F16Scales: m.f16Scales,
				W: asU32(bufs[0]), Scales: asU16(bufs[1]), Biases: asU16(bufs[2])}
		case m.dtype == BF16:
			x.BF16 = asU16(bufs[0])
		default:
			x.F32 = unsafe.Slice((*float32)(unsafe.Pointer(&bufs[0][0])), len(bufs[0])/4)
		}
		out[i] = x
	}
	return out[0], out[1], out[2]
}

// NumExperts, Resolve and Expert make an unattached source usable as a
// placeholder ExpertSet that fails clearly if it is ever run.
func (s *ExpertSource) NumExperts() int { return s.Count }

func (s *ExpertSource) MaxResolve() int { return 0 }

func (s *ExpertSource) Resolve([]int32) ([]bool, error) {
	return nil, fmt.Errorf("layer %d: experts were loaded lazily and no pager is attached", s.Layer)
}

func (s *ExpertSource) Expert(int32) (gate, up, down *kernels.Matrix) { return nil, nil, nil }

// expertSource describes a layer's experts from their tensor headers.
func expertSource(w *weights, layer int, p string, n, inter int, names expertNames) *ExpertSource {
	h := w.cfg.HiddenSize
	src := &ExpertSource{Layer: layer, Count: n}
	shapes := [3][2]int{{inter, h}, {inter, h}, {h, inter}}
	fusedGateUp, fusedDown := names.fused()
	switch {
	case w.has(p + "switch_mlp.gate_proj.weight"):
		for i, name := range []string{"gate_proj", "up_proj", "down_proj"} {
			lt := w.linearInfo(p+"switch_mlp."+name, n, shapes[i][0], shapes[i][1])
			src.mats[i] = w.expertMatrix(src, lt, shapes[i], func(t *TensorInfo) expertPart {
				return expertPart{stacked: t, stride: t.Length / int64(n), length: t.Length / int64(n)}
			})
		}
	case w.has(p + fusedGateUp):
		// Fused [E, 2I, H]: gate is the first I rows of each expert's slice.
		gu, dn := w.tensor(p+fusedGateUp), w.tensor(p+fusedDown)
		if gu == nil || dn == nil {
			return src
		}
		stride := gu.Length / int64(n)
		for i, off := range []int64{0, stride / 2} {
			src.mats[i] = w.expertMatrix(src, &linearTensors{weight: gu}, shapes[i], func(t *TensorInfo) expertPart {
				return expertPart{stacked: t, stride: stride, offset: off, length: stride / 2}
			})
		}
		src.mats[2] = w.expertMatrix(src, &linearTensors{weight: dn}, shapes[2], func(t *TensorInfo) expertPart {
			return expertPart{stacked: t, stride: t.Length / int64(n), length: t.Length / int64(n)}
		})
	default:
		for i, name := range []string{names.gate, names.up, names.down} {
			var per []*linearTensors
			for e := 0; e < n; e++ {
				per = append(per, w.linearInfo(fmt.Sprintf("%sexperts.%d.%s", p, e, name), 0, shapes[i][0], shapes[i][1]))
			}
			if w.err != nil {
				return src
			}
			k := 0
			src.mats[i] = w.expertMatrix(src, per[0], shapes[i], func(t *TensorInfo) expertPart {
				part := expertPart{length: t.Length}
				for _, lt := range per {
					part.perExpert = append(part.perExpert, []*TensorInfo{lt.weight, lt.scales, lt.biases}[k])
				}
				k++
				return part
			})
		}
	}
	return src
}

// expertMatrix records the parts of one matrix; part makes the expertPart
// of each tensor (weight, scales, biases). A dtype Views cannot read marks
// the source unpageable.
func (w *weights) expertMatrix(src *ExpertSource, lt *linearTensors, shape [2]int, part func(*TensorInfo) expertPart) expertMatrix {
	if lt == nil || w.err != nil {
		return expertMatrix{}
	}
	m := expertMatrix{rows: shape[0], cols: shape[1], quant: lt.quant, dtype: lt.weight.DType}
	switch {
	case lt.quant.Bits != 0:
		m.f16Scales = lt.scales.DType == F16
		m.parts = []expertPart{part(lt.weight), part(lt.scales), part(lt.biases)}
	case lt.weight.DType == BF16 || lt.weight.DType == F32:
		m.parts = []expertPart{part(lt.weight)}
	default:
		src.unpageable = fmt.Sprintf("tensor %s: %s experts cannot be paged (quantized, BF16 or F32 can)", lt.weight.Name, lt.weight.DType)
	}
	return m
}

// layerSpec is the source's experts as the pager describes them.
func (s *ExpertSource) layerSpec() experts.LayerSpec {
	spec := experts.LayerSpec{Experts: make([][]experts.Extent, s.Count)}
	for e := range s.Count {
		for _, x := range s.Extents(e) {
			spec.Experts[e] = append(spec.Experts[e], experts.Extent{File: x.File, Offset: x.Offset, Length: x.Length})
		}
	}
	return spec
}

// residentExperts reads every expert of src into one buffer (w.buffers: the
// executor's, when it has them), each laid out as the pager lays out a
// slot, and builds its matrices with Views: resident, mapped (os) and paged
// experts differ only in where the bytes come from.
func (w *weights) residentExperts(src *ExpertSource) *ResidentExperts {
	if w.err != nil {
		return nil
	}
	lay, err := experts.NewLayerLayout(src.Layer, src.layerSpec())
	if err != nil {
		w.fail("%v", err)
		return nil
	}
	size := int64(src.Count) * lay.SlotStride
	buf, err := w.buffers.AllocBuffer(int(size))
	if err != nil {
		w.fail("layer %d: allocating %d bytes for %d experts: %v", src.Layer, size, src.Count, err)
		return nil
	}
	w.offHeap = append(w.offHeap, buf)
	x := &ResidentExperts{}
	for e := range src.Count {
		slot := buf[int64(e)*lay.SlotStride:][:lay.SlotStride]
		for i, ext := range src.Extents(e) {
			if err := w.ix.readExtent(ext, slot[lay.PartOffsets[i]:][:ext.Length]); err != nil {
				w.fail("layer %d expert %d: %v", src.Layer, e, err)
				return nil
			}
		}
		g, u, d := src.Views(slot, lay.PartOffsets)
		x.Gate, x.Up, x.Down = append(x.Gate, g), append(x.Up, u), append(x.Down, d)
	}
	return x
}
