package model

import "math"

// Qwen3-Next (Qwen3-Coder-Next): a hybrid stack where every
// full_attention_interval-th layer (or those layer_types names) is gated
// full attention and the others are Gated DeltaNet linear attention; every
// layer's FFN is a softmax-routed MoE with a sigmoid-gated shared expert.
//
// MLX files store the RMSNorm weights (layer, final, q/k) already as 1+w
// and conv1d as [C, K, 1]; Hugging Face files store zero-centred norms and
// conv1d as [C, 1, K]. The conv1d shape tells the layouts apart.
func init() {
	register("qwen3_next", func(w *weights) *Model { return loadHybrid(w, loadQwen3NextDeltaNet) })
}

// loadHybrid assembles the Qwen3-Next / Qwen3.5 stack; loadDelta reads a
// linear-attention block (the two families arrange its input projections
// differently).
func loadHybrid(w *weights, loadDelta func(w *weights, p string) *GatedDeltaNet) *Model {
	c := w.cfg
	m := loadStack(w, func(l int, lp string) (Mixer, FFN) {
		var mixer Mixer
		if isFullAttention(c, l) {
			mixer = loadAttention(w, lp+qwenNames.Attention, attentionOptions{qkNorm: true, gated: true})
		} else {
			mixer = loadDelta(w, lp+qwenNames.LinearAttention)
		}
		return mixer, qwenFFN(w, l, lp, func() FFN { return loadSharedMoE(w, lp+qwenNames.FFN, l, normTopK(c, true)) })
	})
	if w.err == nil && zeroCentredNorms(w, prefixOf(w.ix)) {
		shiftNorms(m)
	}
	return m
}

// isFullAttention says whether layer l is softmax attention in a hybrid
// stack.
func isFullAttention(c *Config, l int) bool {
	if len(c.LayerTypes) > 0 {
		return c.LayerTypes[l] == "full_attention"
	}
	interval := max(c.FullAttentionInterval, 1)
	return (l+1)%interval == 0
}

// zeroCentredNorms reports the Hugging Face layout: its conv1d weights are
// [C, 1, K], MLX's [C, K, 1].
func zeroCentredNorms(w *weights, p string) bool {
	for l := 0; l < w.cfg.NumLayers; l++ {
		if t, ok := w.ix.Tensor(layerPrefix(p, l) + qwenNames.LinearAttention + "conv1d.weight"); ok {
			return len(t.Shape) == 3 && t.Shape[1] == 1 && t.Shape[2] != 1
		}
	}
	return false
}

// shiftNorms turns zero-centred RMSNorm weights w into the 1+w the kernels
// multiply by.
func shiftNorms(m *Model) {
	shift := func(v []float32) {
		for i := range v {
			v[i]++
		}
	}
	shift(m.Norm)
	for _, l := range m.Layers {
		shift(l.InputNorm)
		shift(l.PostNorm)
		if a, ok := l.Mixer.(*Attention); ok {
			shift(a.QNorm)
			shift(a.KNorm)
		}
	}
}

// deltaNetShape reads the linear-attention sizes from the config.
func deltaNetShape(w *weights) *GatedDeltaNet {
	c := w.cfg
	return &GatedDeltaNet{KeyHeads: c.LinearNumKeyHeads, ValueHeads: c.LinearNumValHeads,
		KeyDim: c.LinearKeyHeadDim, ValueDim: c.LinearValueHeadDim, ConvKernel: c.LinearConvKernel,
		Eps: float32(c.RMSNormEps)}
}

// loadDeltaNetCommon reads the parts of a linear-attention block that do
// not depend on how the input projections are arranged.
func loadDeltaNetCommon(w *weights, p string, g *GatedDeltaNet) {
	if g.KeyHeads <= 0 || g.ValueHeads%max(g.KeyHeads, 1) != 0 || g.ConvKernel < 2 {
		w.fail("%s: linear attention needs linear_num_value_heads (%d) a multiple of linear_num_key_heads (%d) and linear_conv_kernel_dim >= 2 (%d)",
			w.cfg.Path, g.ValueHeads, g.KeyHeads, g.ConvKernel)
		return
	}
	g.Conv = w.vector(p+"conv1d.weight", g.convChannels()*g.ConvKernel)
	g.ALog = w.vector(p+"A_log", g.ValueHeads)
	g.DtBias = w.vector(p+"dt_bias", g.ValueHeads)
	g.decay = make([]float32, len(g.ALog))
	for i, v := range g.ALog {
		g.decay[i] = float32(-math.Exp(float64(v)))
	}
	g.Norm = w.vector(p+"norm.weight", g.ValueDim)
	g.Out = w.linear(p+"out_proj", w.cfg.HiddenSize, g.valueWidth())
}

// loadQwen3NextDeltaNet reads the fused projections: in_proj_qkvz holds,
// per key head, [q(dk) k(dk) v(r*dv) z(r*dv)] and in_proj_ba [b(r) a(r)],
// r = value heads per key head. Their rows are regrouped part by part
// (all heads' q, then k, v, z; all b, then a) and cut into one matrix per
// part.
func loadQwen3NextDeltaNet(w *weights, p string) *GatedDeltaNet {
	g := deltaNetShape(w)
	loadDeltaNetCommon(w, p, g)
	if w.err != nil {
		return g
	}
	hk, dk, dv := g.KeyHeads, g.KeyDim, g.ValueDim
	r := g.ValueHeads / hk
	kw, vw, hv := g.keyWidth(), g.valueWidth(), g.ValueHeads
	per := 2*dk + 2*r*dv
	qkvz := w.linear(p+"in_proj_qkvz", hk*per, w.cfg.HiddenSize)
	ba := w.linear(p+"in_proj_ba", hk*2*r, w.cfg.HiddenSize)
	if w.err != nil {
		return g
	}
	// rows lists, for every key head, the rows [from, from+size) of its
	// block at offset within the head's width-sized group.
	rows := func(width, offset, size int) []int {
		var out []int
		for h := 0; h < hk; h++ {
			for i := 0; i < size; i++ {
				out = append(out, h*width+offset+i)
			}
		}
		return out
	}
	order := rows(per, 0, dk)
	order = append(order, rows(per, dk, dk)...)
	order = append(order, rows(per, 2*dk, r*dv)...)
	order = append(order, rows(per, 2*dk+r*dv, r*dv)...)
	parts := splitRows(qkvz, order, kw, kw, vw, vw)
	g.Q, g.K, g.V, g.Z = parts[0], parts[1], parts[2], parts[3]
	parts = splitRows(ba, append(rows(2*r, 0, r), rows(2*r, r, r)...), hv, hv)
	g.B, g.A = parts[0], parts[1]
	return g
}
