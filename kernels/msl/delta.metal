// Kernels of the gated DeltaNet (linear-attention) block of Qwen3-Next and
// Qwen3.5, for decoding one token; see kernels/gated_delta.go and
// kernels/conv1d.go for the math.
#include <metal_stdlib>
using namespace metal;

// conv1d_step: the causal depthwise convolution plus SiLU for one token.
// state [channels, kernel-1] (oldest first, updated), x [channels],
// w [channels, kernel] (tap kernel-1 multiplies x), out [channels].
// Launch: one thread per channel, threads (256,1,1), groups (ceil(channels/256),1,1).
struct ConvParams {
  uint channels;
  uint kernel_size;
};

kernel void conv1d_step(device float* state [[buffer(0)]],
                        device const float* x [[buffer(1)]],
                        device const float* w [[buffer(2)]],
                        device float* out [[buffer(3)]],
                        constant ConvParams& p [[buffer(4)]],
                        uint c [[thread_position_in_grid]]) {
  if (c >= p.channels) return;
  uint hist = p.kernel_size - 1;
  device float* s = state + c * hist;
  device const float* wc = w + c * p.kernel_size;
  float xc = x[c];
  float acc = 0;
  for (uint j = 0; j < hist; j++) acc += wc[j] * s[j];
  acc += wc[hist] * xc;
  out[c] = acc / (1.0f + exp(-acc));
  for (uint j = 0; j + 1 < hist; j++) s[j] = s[j + 1];
  if (hist > 0) s[hist - 1] = xc;
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

// gated_delta_step: one token of the gated delta rule for value head h:
//   q̂ = l2norm(q)/sqrt(dk), k̂ = l2norm(k) (key head h/(hv/hk))
//   δ = beta (v - e^g Sᵀk̂);  S = e^g S + k̂ δᵀ;  out = Sᵀq̂
// state [hv, dk, dv] (updated), q, k [hk, dk], v [hv, dv], g, beta [hv],
// out [hv, dv]. dk is at most 256.
// Launch: threads (128,1,1), groups (hv,1,1); thread j owns columns
// j, j+128, ... of its head's state, so no two threads touch the same value.
constant constexpr uint kDeltaThreads = 128;
constant constexpr uint kMaxDk = 256;

struct DeltaParams {
  uint hk;
  uint hv;
  uint dk;
  uint dv;
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

kernel void gated_delta_step(device float* state [[buffer(0)]],
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
  uint kh = h / (p.hv / p.hk);
  device const float* qh = q + kh * p.dk;
  device const float* kh_ = k + kh * p.dk;
  float qq = 0, kk = 0;
  for (uint i = tid; i < p.dk; i += kDeltaThreads) {
    qq += qh[i] * qh[i];
    kk += kh_[i] * kh_[i];
  }
  qq = delta_sum(qq, scratch, sg, lane);
  kk = delta_sum(kk, scratch, sg, lane);
  float qs = precise::rsqrt(qq + 1e-6f) * precise::rsqrt(float(p.dk)), ks = precise::rsqrt(kk + 1e-6f);
  for (uint i = tid; i < p.dk; i += kDeltaThreads) {
    qn[i] = qh[i] * qs;
    kn[i] = kh_[i] * ks;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  float decay = precise::exp(g[h]), b = beta[h];
  device float* s = state + h * p.dk * p.dv;
  for (uint j = tid; j < p.dv; j += kDeltaThreads) {
    float m = 0;
    for (uint i = 0; i < p.dk; i++) m += s[i * p.dv + j] * kn[i];
    float d = b * (v[h * p.dv + j] - decay * m);
    float o = 0;
    for (uint i = 0; i < p.dk; i++) {
      float x = decay * s[i * p.dv + j] + kn[i] * d;
      s[i * p.dv + j] = x;
      o += qn[i] * x;
    }
    out[h * p.dv + j] = o;
  }
}
