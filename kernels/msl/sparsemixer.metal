// PhiMoE's routing: transformers' sparsemixer at inference (see
// kernels.sparseMixer, its Go reference). Launch: one thread per token,
// threads (32,1,1), groups (ceil(tokens/32),1,1); experts are few (16 in
// Phi-3.5-MoE), so a token's loops run on its one thread.
#include <metal_stdlib>
using namespace metal;

struct SparseMixerParams {
  uint experts;  // router logits per token
  uint tokens;
  float eps;     // router_jitter_noise: scores kept within 2*eps (relative)
};

// sm_argmax is the index of the largest score, skipping skip (-1: none),
// the lowest index among equals.
inline int sm_argmax(device const float* s, uint n, int skip) {
  int best = -1;
  for (uint i = 0; i < n; i++) {
    if (int(i) != skip && (best < 0 || s[i] > s[best])) best = int(i);
  }
  return best;
}

// sm_weight is s[top]'s softmax probability over the scores within the
// mask around the maximum s[top] (skip excluded).
inline float sm_weight(device const float* s, uint n, int top, int skip, float thr) {
  float m = s[top];
  float sum = 0;
  for (uint j = 0; j < n; j++) {
    float v = s[j];
    if (int(j) == skip || (m - v) / max(fabs(v), m) > thr) continue;
    sum += exp(v - m);
  }
  return 1.0f / sum;
}

// route_sparsemixer: two experts per token. ids and weights are
// [tokens, 2].
kernel void route_sparsemixer(device const float* logits [[buffer(0)]],
                              device int* ids [[buffer(1)]],
                              device float* weights [[buffer(2)]],
                              constant SparseMixerParams& p [[buffer(3)]],
                              uint token [[thread_position_in_grid]]) {
  if (token >= p.tokens) return;
  device const float* s = logits + token * p.experts;
  float thr = 2 * p.eps;
  int e1 = sm_argmax(s, p.experts, -1);
  int e2 = sm_argmax(s, p.experts, e1);
  ids[token * 2] = e1;
  weights[token * 2] = sm_weight(s, p.experts, e1, -1, thr);
  ids[token * 2 + 1] = e2;
  weights[token * 2 + 1] = sm_weight(s, p.experts, e2, e1, thr);
}
