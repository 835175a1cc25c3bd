package metal

// Split-K attention (flash decoding): a decode step over a long cache runs
// one threadgroup per head and chunk of positions (sdpa_split_*), then
// sdpa_merge combines the chunks, instead of one threadgroup per head
// walking the whole cache while most of the GPU idles.

// sdpaSplitMin is the cache length from which a decode step splits (a
// variable so that tests can split short caches).
var sdpaSplitMin = 1024

const (
	sdpaSplitChunk = 256 // positions per split, at least
	sdpaMaxSplits  = 32
)

// sdpaSplits returns how a row of length positions is split: chunk
// positions per split, splits splits; 0 splits for one pass.
func sdpaSplits(n, length int) (chunk, splits int) {
	if n != 1 || length < sdpaSplitMin {
		return 0, 0
	}
	splits = min(sdpaMaxSplits, ceilDiv(length, sdpaSplitChunk))
	return ceilDiv(length, splits), splits
}

// splitKernel is the split form of an sdpa kernel ("" when there is none).
func splitKernel(kernel string) string {
	switch kernel {
	case "sdpa_f32":
		return "sdpa_split_f32"
	case "sdpa_f16":
		return "sdpa_split_f16"
	case "sdpa_q8":
		return "sdpa_split_q8"
	case "sdpa_q4":
		return "sdpa_split_q4"
	}
	return ""
}

type (
	splitParams struct{ Chunk, Splits uint32 }
	mergeParams struct{ Heads, DV, Splits, HasGate uint32 }
)

// runSDPA launches an sdpa kernel over n tokens with parameters p: args
// bind its buffers (q at 0, the caches at 1 and 2, the gate at 3, out at
// 4, a quantized cache's scales, biases and group at 6..10), p goes at 5.
// A long decode runs split (see sdpaSplits).
func (e *Executor) runSDPA(kernel string, n int, p sdpaParams, args ...binding) {
	heads, dv := int(p.Heads), int(p.DV)
	chunk, splits := sdpaSplits(n, int(p.Pos0)+n)
	split := splitKernel(kernel)
	if splits == 0 || split == "" || !e.dev.hasKernel(split) || !e.dev.hasKernel("sdpa_merge") {
		var a [12]binding
		e.run(kernel, [3]int{heads, n, 1}, [3]int{sdpaThreads, 1, 1}, append(append(a[:0], args...), e.upload(5, p))...)
		return
	}
	rows := n * heads
	po := e.scratchBuf("sdpa_split_o", 4*rows*splits*dv)
	pml := e.scratchBuf("sdpa_split_ml", 8*rows*splits)
	if po == nil || pml == nil {
		return
	}
	partO := binding{index: 12, buf: po, n: 4 * rows * splits * dv}
	partML := binding{index: 13, buf: pml, n: 8 * rows * splits}
	var a [16]binding
	sa := a[:0]
	var gate, out binding
	for _, b := range args {
		switch b.index {
		case 3:
			gate = b
		case 4:
			out = b
		default:
			sa = append(sa, b)
		}
	}
	sa = append(sa, e.upload(5, p), e.upload(11, splitParams{uint32(chunk), uint32(splits)}), partO, partML)
	e.run(split, [3]int{heads, n, splits}, [3]int{sdpaThreads, 1, 1}, sa...)
	e.run("sdpa_merge", [3]int{heads, n, 1}, [3]int{sdpaThreads, 1, 1},
		at(0, partO), at(1, partML), at(2, gate), at(3, out), e.upload(4, mergeParams{uint32(heads), uint32(dv), uint32(splits), p.HasGate}))
}
