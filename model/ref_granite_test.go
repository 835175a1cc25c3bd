package model_test

// A float64 Go transcription of transformers' GraniteMoeForCausalLM and
// GraniteMoeHybridForCausalLM forward passes (modeling_granitemoe.py,
// modeling_granitemoehybrid.py; the Mamba-2 layer as its torch_forward
// prefill path, the chunked SSD scan), used to make the granite fixtures'
// reference.json while no transformers oracle is available. It shares no
// code with the engine: plain loops over float64, fed the stored weights
// (dequantized with kernels' Matrix.Row, the only engine code it uses).

import (
	"math"
	"slices"
	"sort"
)

// refLayer is one decoder layer's weights, [out][in] matrices.
type refLayer struct {
	kind             string // "attention" or "mamba"
	inNorm, postNorm []float64
	q, k, v, o       [][]float64
	// Mamba-2
	inProj, outProj            [][]float64
	conv                       [][]float64 // [channels][kernel]
	convBias, aLog, d, dtBias  []float64
	gnorm                      []float64
	router                     [][]float64
	gate, up, down             [][][]float64 // per expert
	sharedGate, sharedUp, sDwn [][]float64   // nil without a shared MLP
}

// refGranite is the model: config values and weights.
type refGranite struct {
	hidden, heads, kvHeads, headDim, topK int
	eps, theta                            float64
	rope                                  bool
	embMul, resMul, attnMul, logitsScale  float64
	// Mamba-2
	mHeads, mHeadDim, mGroups, mState, mConv, chunk int

	embed, head [][]float64
	norm        []float64
	layers      []refLayer
}

// refPass is what one forward pass over a prompt records.
type refPass struct {
	logits   [][]float64 // per position
	embLast  []float64
	layerOut [][]float64       // per layer, last position
	routes   map[int][][]int32 // per MoE layer, per token, sorted ids
}

func matVec(w [][]float64, x []float64) []float64 {
	out := make([]float64, len(w))
	for i, row := range w {
		var s float64
		for j, v := range row {
			s += v * x[j]
		}
		out[i] = s
	}
	return out
}

func rmsNorm64(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * inv * w[i]
	}
	return out
}

func silu64(x float64) float64 { return x / (1 + math.Exp(-x)) }

func softplus64(x float64) float64 {
	if x > 20 { // torch's threshold
		return x
	}
	return math.Log1p(math.Exp(x))
}

// forward runs the prompt and returns every position's logits and the
// traces the fixture records.
func (m *refGranite) forward(ids []int32) refPass {
	n := len(ids)
	x := make([][]float64, n)
	for t, id := range ids {
		x[t] = make([]float64, m.hidden)
		for i, v := range m.embed[id] {
			x[t][i] = v * m.embMul // inputs_embeds * embedding_multiplier
		}
	}
	p := refPass{embLast: slices.Clone(x[n-1]), routes: map[int][][]int32{}}
	for l := range m.layers {
		L := &m.layers[l]
		h := make([][]float64, n)
		for t := range x {
			h[t] = rmsNorm64(x[t], L.inNorm, m.eps)
		}
		var mix [][]float64
		if L.kind == "mamba" {
			mix = m.mamba(L, h)
		} else {
			mix = m.attention(L, h)
		}
		for t := range x {
			for i := range x[t] {
				x[t][i] += mix[t][i] * m.resMul // residual + hidden * residual_multiplier
			}
			h[t] = rmsNorm64(x[t], L.postNorm, m.eps)
		}
		for t := range x {
			f := m.moe(L, h[t], l, &p)
			if L.sharedGate != nil {
				s := m.mlp(L.sharedGate, L.sharedUp, L.sDwn, h[t])
				for i := range f {
					f[i] += s[i]
				}
			}
			for i := range x[t] {
				x[t][i] += f[i] * m.resMul
			}
		}
		p.layerOut = append(p.layerOut, slices.Clone(x[n-1]))
	}
	for t := range x {
		lg := matVec(m.head, rmsNorm64(x[t], m.norm, m.eps))
		for i := range lg {
			lg[i] /= m.logitsScale // logits / logits_scaling
		}
		p.logits = append(p.logits, lg)
	}
	return p
}

// mlp is a SwiGLU MLP: down(silu(gate x) * up x) (the experts and the
// shared MLP, whose input_linear chunks are gate then up).
func (m *refGranite) mlp(gate, up, down [][]float64, x []float64) []float64 {
	g, u := matVec(gate, x), matVec(up, x)
	for i := range g {
		g[i] = silu64(g[i]) * u[i]
	}
	return matVec(down, g)
}

// moe is GraniteMoe(Hybrid)MoE for one token: top-k of the router logits,
// softmax over those k, the gated sum of the chosen experts.
func (m *refGranite) moe(L *refLayer, x []float64, layer int, p *refPass) []float64 {
	if L.router == nil { // a dense model: no routed experts
		return make([]float64, m.hidden)
	}
	logits := matVec(L.router, x)
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	top := idx[:m.topK]
	mx := logits[top[0]]
	var sum float64
	gates := make([]float64, m.topK)
	for k, e := range top {
		gates[k] = math.Exp(logits[e] - mx)
		sum += gates[k]
	}
	out := make([]float64, m.hidden)
	chosen := make([]int32, 0, m.topK)
	for k, e := range top {
		y := m.mlp(L.gate[e], L.up[e], L.down[e], x)
		for i := range out {
			out[i] += gates[k] / sum * y[i]
		}
		chosen = append(chosen, int32(e))
	}
	slices.Sort(chosen)
	p.routes[layer] = append(p.routes[layer], chosen)
	return out
}

// attention is causal GQA softmax attention with scores scaled by
// attention_multiplier and, when enabled, rotate_half rotary embedding.
func (m *refGranite) attention(L *refLayer, h [][]float64) [][]float64 {
	n, d := len(h), m.headDim
	q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
	for t := range h {
		q[t], k[t], v[t] = matVec(L.q, h[t]), matVec(L.k, h[t]), matVec(L.v, h[t])
		if m.rope {
			m.rotate(q[t], m.heads, t)
			m.rotate(k[t], m.kvHeads, t)
		}
	}
	out := make([][]float64, n)
	group := m.heads / m.kvHeads
	for t := range h {
		att := make([]float64, m.heads*d)
		for hd := range m.heads {
			g := hd / group
			scores := make([]float64, t+1)
			mx := math.Inf(-1)
			for s := 0; s <= t; s++ {
				var dot float64
				for i := range d {
					dot += q[t][hd*d+i] * k[s][g*d+i]
				}
				scores[s] = dot * m.attnMul
				mx = math.Max(mx, scores[s])
			}
			var sum float64
			for s := range scores {
				scores[s] = math.Exp(scores[s] - mx)
				sum += scores[s]
			}
			for s := range scores {
				for i := range d {
					att[hd*d+i] += scores[s] / sum * v[s][g*d+i]
				}
			}
		}
		out[t] = matVec(L.o, att)
	}
	return out
}

// rotate applies rotate_half rope at position pos to each head of x.
func (m *refGranite) rotate(x []float64, heads, pos int) {
	d, half := m.headDim, m.headDim/2
	for hd := range heads {
		xs := x[hd*d : (hd+1)*d]
		for i := range half {
			f := float64(pos) / math.Pow(m.theta, float64(2*i)/float64(d))
			c, s := math.Cos(f), math.Sin(f)
			a, b := xs[i], xs[i+half]
			xs[i], xs[i+half] = a*c-b*s, b*c+a*s
		}
	}
}

// mamba is GraniteMoeHybridMambaLayer.torch_forward without a cache: the
// in_proj split, the zero-padded causal conv1d + bias + SiLU, the chunked
// SSD scan (chunk_size tokens per chunk, the last zero-padded), the D skip,
// the gated RMSNorm (x * silu(gate), then the norm over the whole
// intermediate size) and out_proj.
func (m *refGranite) mamba(L *refLayer, h [][]float64) [][]float64 {
	n := len(h)
	inner, gn := m.mHeads*m.mHeadDim, m.mGroups*m.mState
	ch := inner + 2*gn
	gate, xbc, dt := make([][]float64, n), make([][]float64, n), make([][]float64, n)
	for t := range h {
		pr := matVec(L.inProj, h[t])
		gate[t], xbc[t], dt[t] = pr[:inner], pr[inner:inner+ch], pr[inner+ch:]
	}
	conv := make([][]float64, n)
	for t := range n {
		conv[t] = make([]float64, ch)
		for c := range ch {
			acc := L.convBias[c]
			for j := range m.mConv {
				if s := t - (m.mConv - 1) + j; s >= 0 {
					acc += L.conv[c][j] * xbc[s][c]
				}
			}
			conv[t][c] = silu64(acc)
		}
	}
	y := make([][]float64, n)
	for t := range y {
		y[t] = make([]float64, inner)
	}
	per := m.mHeads / m.mGroups
	P, N, Q := m.mHeadDim, m.mState, m.chunk
	chunks := (n + Q - 1) / Q
	for hd := range m.mHeads {
		g := hd / per
		A := -math.Exp(L.aLog[hd])
		// Per (padded) position: dt, A*dt, x*dt, B, C; padding is zeros.
		dA := make([]float64, chunks*Q)
		xd := make([][]float64, chunks*Q)
		B, C := make([][]float64, chunks*Q), make([][]float64, chunks*Q)
		for t := range chunks * Q {
			xd[t], B[t], C[t] = make([]float64, P), make([]float64, N), make([]float64, N)
			if t >= n {
				continue
			}
			step := softplus64(dt[t][hd] + L.dtBias[hd])
			dA[t] = A * step
			for i := range P {
				xd[t][i] = conv[t][hd*P+i] * step
			}
			copy(B[t], conv[t][inner+g*N:inner+(g+1)*N])
			copy(C[t], conv[t][inner+gn+g*N:inner+gn+(g+1)*N])
		}
		state := make([]float64, P*N) // entering the chunk; zero at the start
		for k := range chunks {
			c0 := k * Q
			cum := make([]float64, Q)
			for l := range Q {
				cum[l] = dA[c0+l]
				if l > 0 {
					cum[l] += cum[l-1]
				}
			}
			for l := range Q {
				t := c0 + l
				if t >= n {
					break
				}
				// Y_diag: within the chunk, C_l·B_s exp(cum_l - cum_s) x_s.
				for s := 0; s <= l; s++ {
					var cb float64
					for i := range N {
						cb += C[t][i] * B[c0+s][i]
					}
					w := cb * math.Exp(cum[l]-cum[s])
					for i := range P {
						y[t][hd*P+i] += w * xd[c0+s][i]
					}
				}
				// Y_off: the state entering the chunk, decayed to l.
				dec := math.Exp(cum[l])
				for i := range P {
					var acc float64
					for j := range N {
						acc += state[i*N+j] * C[t][j]
					}
					y[t][hd*P+i] += dec * acc
				}
			}
			// The state entering the next chunk.
			total := cum[Q-1]
			for i := range P {
				for j := range N {
					v := math.Exp(total) * state[i*N+j]
					for s := range Q {
						v += math.Exp(total-cum[s]) * B[c0+s][j] * xd[c0+s][i]
					}
					state[i*N+j] = v
				}
			}
		}
		for t := range n {
			for i := range P {
				y[t][hd*P+i] += L.d[hd] * conv[t][hd*P+i]
			}
		}
	}
	out := make([][]float64, n)
	for t := range n {
		v := make([]float64, inner)
		for i := range v {
			v[i] = y[t][i] * silu64(gate[t][i])
		}
		out[t] = matVec(L.outProj, rmsNorm64(v, L.gnorm, m.eps))
	}
	return out
}
