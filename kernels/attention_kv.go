package kernels

// AttentionKV is Attention against caches in any KVFormat: kv head g's key
// of position j is columns kc0+g*dk.. of row j of k, its value columns
// vc0+g*dv.. of row j of v (v may be k itself, as in latent attention).
// Half caches go through fused kernels that read the half rows
// themselves (attention_f16.go); quantized ones are read a key block at a
// time into the tile's float32 scratch, never converted whole: each block
// is converted once per tile, so decode reads every cached byte once per
// step.
func AttentionKV(out, q []float32, k *KVRows, kc0 int, v *KVRows, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	if n <= 0 {
		return
	}
	if k.Format == KVF32 && v.Format == KVF32 {
		Attention(out, q, k.F32[kc0:], v.F32[vc0:], n, pos0, heads, kvHeads, dk, dv, k.Cols, v.Cols, scale)
		return
	}
	j := attnJobs.get()
	// Latent attention reads its values out of the key rows: convert them
	// once, with the keys.
	j.src = kvSource{k: k, kc0: kc0, v: v, vc0: vc0,
		shared: v == k && kvHeads == 1 && vc0 >= kc0 && vc0+dv <= kc0+dk}
	j.base = attnTile{q: q, out: out, heads: heads, group: heads / kvHeads,
		dk: dk, dv: dv, pos0: pos0, scale: scale, src: &j.src}
	j.attend(n, kvHeads)
}

// tileRows is how many query rows a tile takes. A tile converts every key
// block it reads, so over half or quantized caches tiles are four times
// taller: a prompt's keys are converted a quarter as often.
func (a *attnTile) tileRows() int {
	if a.src != nil {
		return 4 * attnRows
	}
	return attnRows
}

// kvSource is where a tile reads keys and values that are not float32.
type kvSource struct {
	k, v     *KVRows
	kc0, vc0 int
	shared   bool
}

// block returns keys j0..j0+nk and their values for kv head g, with their
// row strides: the float32 caches themselves, or those rows converted into
// the tile's scratch.
func (a *attnTile) block(g, j0, nk int) (k []float32, ks int, v []float32, vs int) {
	dk, dv := a.dk, a.dv
	if a.src == nil {
		return a.k[j0*a.kStride+g*dk:], a.kStride, a.v[j0*a.vStride+g*dv:], a.vStride
	}
	s := a.src
	s.k.Load(a.kb, dk, j0, nk, s.kc0+g*dk, dk)
	if s.shared {
		return a.kb, dk, a.kb[s.vc0-s.kc0:], dk
	}
	s.v.Load(a.vb, dv, j0, nk, s.vc0+g*dv, dv)
	return a.kb, dk, a.vb, dv
}

// attentionKVReference dequantizes the whole of both caches and runs
// attentionReference: the direct form AttentionKV is tested against.
func attentionKVReference(out, q []float32, k *KVRows, kc0 int, v *KVRows, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	rows := pos0 + n
	kf := make([]float32, rows*k.Cols)
	vf := make([]float32, rows*v.Cols)
	k.Load(kf, k.Cols, 0, rows, 0, k.Cols)
	v.Load(vf, v.Cols, 0, rows, 0, v.Cols)
	attentionReference(out, q, kf[kc0:], vf[vc0:], n, pos0, heads, kvHeads, dk, dv, k.Cols, v.Cols, scale)
}

// prefetch asks for keys j0..j0+nk of kv head g and their values when the
// cache is half precision (about 30% off a decode token's attention over
// 32k f16 keys on the CI machine; the quantized caches spend their time
// decoding, not waiting).
func (s *kvSource) prefetch(g, j0, nk, dk, dv int) {
	if s.k.Format == KVF16 {
		prefetchHalfL2(s.k.Half[j0*s.k.Cols+s.kc0+g*dk:], s.k.Cols, nk, dk)
	}
	if s.v.Format == KVF16 && !s.shared {
		prefetchHalfL2(s.v.Half[j0*s.v.Cols+s.vc0+g*dv:], s.v.Cols, nk, dv)
	}
}
