// Kernels of the gated DeltaNet (linear-attention) block of Qwen3-Next and
// Qwen3.5: token-by-token forms for decoding and gated_delta_chunked for
// prefill; see kernels/gated_delta.go and kernels/conv1d.go for the math.
#include <metal_stdlib>
using namespace metal;

// conv1d: the causal depthwise convolution plus SiLU for n tokens (a decode
// step is n = 1), continuing from state and leaving in it the last
// kernel_size-1 inputs. state [channels, kernel_size-1] (oldest first),
// x [n, channels], w [channels, kernel_size] (tap kernel_size-1 multiplies the
// newest input), out [n, channels]. kernel_size is at most 8.
// Launch: one thread per channel, threads (256,1,1), groups (ceil(channels/256),1,1).
constant constexpr uint kMaxConv = 8;

struct ConvParams {
  uint channels;
  uint kernel_size;
  uint n;
};

kernel void conv1d(device float* state [[buffer(0)]],
                   device const float* x [[buffer(1)]],
                   device const float* w [[buffer(2)]],
                   device float* out [[buffer(3)]],
                   constant ConvParams& p [[buffer(4)]],
                   uint c [[thread_position_in_grid]]) {
  if (c >= p.channels) return;
  uint hist = p.kernel_size - 1, C = p.channels;
  device float* s = state + c * hist;
  device const float* wc = w + c * p.kernel_size;
  // window holds the last hist inputs, oldest first.
  float window[kMaxConv];
  for (uint j = 0; j < hist; j++) window[j] = s[j];
  for (uint t = 0; t < p.n; t++) {
    float xt = x[t * C + c];
    float acc = wc[hist] * xt;
    for (uint j = 0; j < hist; j++) acc += wc[j] * window[j];
    out[t * C + c] = acc / (1.0f + exp(-acc));
    for (uint j = 0; j + 1 < hist; j++) window[j] = window[j + 1];
    if (hist > 0) window[hist - 1] = xt;
  }
  for (uint j = 0; j < hist; j++) s[j] = window[j];
}

// gated_delta_gates: g = -exp(a_log[h]) * softplus(a + dt_bias[h]) (log
// decay) and beta = sigmoid(b), for a, b [n, hv]. g and beta may alias a, b.
// Launch: one thread per element, threads (256,1,1), groups (ceil(n*hv/256),1,1).
struct GateParams {
  uint hv;
  uint count;  // n*hv
};

kernel void gated_delta_gates(device const float* a [[buffer(0)]],
                              device const float* b [[buffer(1)]],
                              device const float* a_log [[buffer(2)]],
                              device const float* dt_bias [[buffer(3)]],
                              device float* g [[buffer(4)]],
                              device float* beta [[buffer(5)]],
                              constant GateParams& p [[buffer(6)]],
                              uint i [[thread_position_in_grid]]) {
  if (i >= p.count) return;
  uint h = i % p.hv;
  float x = a[i] + dt_bias[h];
  float sp = x > 20.0f ? x : precise::log(1.0f + precise::exp(x));
  float bi = b[i];
  g[i] = -precise::exp(a_log[h]) * sp;
  beta[i] = 1.0f / (1.0f + exp(-bi));
}

// gated_delta: n tokens of the gated delta rule (a decode step is n = 1),
// token after token, for value head h:
//   q̂ = l2norm(q)/sqrt(dk), k̂ = l2norm(k) (key head h/(hv/hk))
//   δ = beta (v - e^g Sᵀk̂);  S = e^g S + k̂ δᵀ;  out = Sᵀq̂
// state [hv, dk, dv] (updated), q, k [n, hk, dk], v [n, hv, dv],
// g, beta [n, hv], out [n, hv, dv]. dk is at most 256.
// Launch: threads (128,1,1), groups (hv,1,1); thread j owns columns
// j, j+128, ... of its head's state, so no two threads touch the same value.
constant constexpr uint kDeltaThreads = 128;
constant constexpr uint kMaxDk = 256;

struct DeltaParams {
  uint hk;
  uint hv;
  uint dk;
  uint dv;
  uint n;
};

inline float delta_sum(float v, threadgroup float* scratch, uint sg, uint lane) {
  v = simd_sum(v);
  if (lane == 0) scratch[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float t = 0;
  for (uint s = 0; s < kDeltaThreads / 32; s++) t += scratch[s];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return t;
}

kernel void gated_delta(device float* state [[buffer(0)]],
                        device const float* q [[buffer(1)]],
                        device const float* k [[buffer(2)]],
                        device const float* v [[buffer(3)]],
                        device const float* g [[buffer(4)]],
                        device const float* beta [[buffer(5)]],
                        device float* out [[buffer(6)]],
                        constant DeltaParams& p [[buffer(7)]],
                        uint h [[threadgroup_position_in_grid]],
                        uint tid [[thread_index_in_threadgroup]],
                        uint sg [[simdgroup_index_in_threadgroup]],
                        uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float qn[kMaxDk];
  threadgroup float kn[kMaxDk];
  threadgroup float scratch[kDeltaThreads / 32];
  device float* s = state + h * p.dk * p.dv;
  const float dk_scale = precise::rsqrt(float(p.dk));
  for (uint t = 0; t < p.n; t++) {
    uint kh = h / (p.hv / p.hk);
    device const float* qt = q + (t * p.hk + kh) * p.dk;
    device const float* kt = k + (t * p.hk + kh) * p.dk;
    float qq = 0, kk = 0;
    for (uint i = tid; i < p.dk; i += kDeltaThreads) {
      qq += qt[i] * qt[i];
      kk += kt[i] * kt[i];
    }
    qq = delta_sum(qq, scratch, sg, lane);
    kk = delta_sum(kk, scratch, sg, lane);
    float qs = precise::rsqrt(qq + 1e-6f) * dk_scale, ks = precise::rsqrt(kk + 1e-6f);
    for (uint i = tid; i < p.dk; i += kDeltaThreads) {
      qn[i] = qt[i] * qs;
      kn[i] = kt[i] * ks;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);

    uint th = t * p.hv + h;
    float decay = precise::exp(g[th]), b = beta[th];
    for (uint j = tid; j < p.dv; j += kDeltaThreads) {
      float m = 0;
      for (uint i = 0; i < p.dk; i++) m += s[i * p.dv + j] * kn[i];
      float d = b * (v[th * p.dv + j] - decay * m);
      float o = 0;
      for (uint i = 0; i < p.dk; i++) {
        float x = decay * s[i * p.dv + j] + kn[i] * d;
        s[i * p.dv + j] = x;
        o += qn[i] * x;
      }
      out[th * p.dv + j] = o;
    }
    // qn and kn are rewritten for the next token.
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}

// gated_delta_chunked: the same n tokens as gated_delta (same buffers,
// params and launch) in the chunked form of kernels.GatedDeltaChunked, for
// prefill. Per chunk of up to kDeltaChunk tokens, with cumulative log decay
// G_i and A_il = beta_i (k̂_i·k̂_l) e^{G_i-G_l} (l < i), the corrected values
// solve (I+A) Vnew = diag(beta) (V - diag(e^G) K̂ S) by forward substitution
// (the UT transform, applied per state column, so W = (I+A)⁻¹ diag(beta e^G) K̂
// is never formed), and
//   o_i = e^{G_i} q̂_i S + Σ_{l<=i} (q̂_i·k̂_l) e^{G_i-G_l} Vnew_l
//   S   = e^{G_last} S + Σ_l e^{G_last-G_l} k̂_l Vnew_lᵀ
// so the state is swept twice per chunk instead of twice per token. Thread j
// owns state columns j, j+128, ... as in gated_delta. The chunk is 8 so that
// the chunk's q̂ and k̂ (2*8*256 floats) fit in threadgroup memory.
constant constexpr uint kDeltaChunk = 8;

kernel void gated_delta_chunked(device float* state [[buffer(0)]],
                                device const float* q [[buffer(1)]],
                                device const float* k [[buffer(2)]],
                                device const float* v [[buffer(3)]],
                                device const float* g [[buffer(4)]],
                                device const float* beta [[buffer(5)]],
                                device float* out [[buffer(6)]],
                                constant DeltaParams& p [[buffer(7)]],
                                uint h [[threadgroup_position_in_grid]],
                                uint tid [[thread_index_in_threadgroup]],
                                uint sg [[simdgroup_index_in_threadgroup]],
                                uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float qn[kDeltaChunk * kMaxDk];
  threadgroup float kn[kDeltaChunk * kMaxDk];
  threadgroup float A[kDeltaChunk * kDeltaChunk];   // A_il, l < i
  threadgroup float QK[kDeltaChunk * kDeltaChunk];  // (q̂_i·k̂_l) e^{G_i-G_l}, l <= i
  device float* s = state + h * p.dk * p.dv;
  const uint dk = p.dk, dv = p.dv, kh = h / (p.hv / p.hk);
  const float dk_scale = precise::rsqrt(float(dk));
  for (uint t0 = 0; t0 < p.n; t0 += kDeltaChunk) {
    const uint n = min(kDeltaChunk, p.n - t0);
    // Every thread keeps the chunk's cumulative decay and betas.
    float cum[kDeltaChunk], bt[kDeltaChunk];
    float G = 0;
    for (uint i = 0; i < n; i++) {
      uint th = (t0 + i) * p.hv + h;
      G += g[th];
      cum[i] = G;
      bt[i] = beta[th];
    }
    // One SIMD group normalises each token's q and k.
    for (uint i = sg; i < n; i += kDeltaThreads / 32) {
      device const float* qt = q + ((t0 + i) * p.hk + kh) * dk;
      device const float* kt = k + ((t0 + i) * p.hk + kh) * dk;
      float qq = 0, kk = 0;
      for (uint d = lane; d < dk; d += 32) {
        qq += qt[d] * qt[d];
        kk += kt[d] * kt[d];
      }
      qq = simd_sum(qq);
      kk = simd_sum(kk);
      float qs = precise::rsqrt(qq + 1e-6f) * dk_scale, ks = precise::rsqrt(kk + 1e-6f);
      for (uint d = lane; d < dk; d += 32) {
        qn[i * kMaxDk + d] = qt[d] * qs;
        kn[i * kMaxDk + d] = kt[d] * ks;
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    // Pairwise terms, one (i, l) pair per thread; only l <= i, so every
    // exponent G_i-G_l is <= 0 for decaying gates.
    if (tid < kDeltaChunk * kDeltaChunk) {
      uint i = tid / kDeltaChunk, l = tid % kDeltaChunk;
      if (i < n && l <= i) {
        float qk = 0, kk = 0;
        for (uint d = 0; d < dk; d++) {
          qk += qn[i * kMaxDk + d] * kn[l * kMaxDk + d];
          kk += kn[i * kMaxDk + d] * kn[l * kMaxDk + d];
        }
        float e = precise::exp(cum[i] - cum[l]);
        QK[tid] = qk * e;
        A[tid] = bt[i] * kk * e;
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);

    for (uint j = tid; j < dv; j += kDeltaThreads) {
      // First sweep: Sᵀk̂_i and Sᵀq̂_i for every token of the chunk.
      float m[kDeltaChunk], o[kDeltaChunk];
      for (uint i = 0; i < n; i++) m[i] = o[i] = 0;
      for (uint d = 0; d < dk; d++) {
        float x = s[d * dv + j];
        for (uint i = 0; i < n; i++) {
          m[i] += kn[i * kMaxDk + d] * x;
          o[i] += qn[i * kMaxDk + d] * x;
        }
      }
      // Forward substitution for Vnew, then the outputs.
      float vn[kDeltaChunk];
      for (uint i = 0; i < n; i++) {
        float ei = precise::exp(cum[i]);
        float r = bt[i] * (v[((t0 + i) * p.hv + h) * dv + j] - ei * m[i]);
        for (uint l = 0; l < i; l++) r -= A[i * kDeltaChunk + l] * vn[l];
        vn[i] = r;
        float y = ei * o[i];
        for (uint l = 0; l <= i; l++) y += QK[i * kDeltaChunk + l] * vn[l];
        out[((t0 + i) * p.hv + h) * dv + j] = y;
      }
      // Second sweep: decay the state and add the chunk's updates.
      float last = cum[n - 1];
      for (uint l = 0; l < n; l++) vn[l] *= precise::exp(last - cum[l]);
      float decay = precise::exp(last);
      for (uint d = 0; d < dk; d++) {
        float x = decay * s[d * dv + j];
        for (uint l = 0; l < n; l++) x += kn[l * kMaxDk + d] * vn[l];
        s[d * dv + j] = x;
      }
    }
    // qn, kn, A and QK are rewritten for the next chunk.
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}
