// Element-wise kernels. Launch: one thread per element, threadgroups of up to
// 1024 threads covering n (threads past n do nothing).
#include <metal_stdlib>
using namespace metal;

// out = a + b
kernel void add(device const float* a [[buffer(0)]],
                device const float* b [[buffer(1)]],
                device float* out [[buffer(2)]],
                constant uint& n [[buffer(3)]],
                uint i [[thread_position_in_grid]]) {
  if (i < n) out[i] = a[i] + b[i];
}

// out = a * b
kernel void mul(device const float* a [[buffer(0)]],
                device const float* b [[buffer(1)]],
                device float* out [[buffer(2)]],
                constant uint& n [[buffer(3)]],
                uint i [[thread_position_in_grid]]) {
  if (i < n) out[i] = a[i] * b[i];
}

// out = silu(x) = x * sigmoid(x)
kernel void silu(device const float* x [[buffer(0)]],
                 device float* out [[buffer(1)]],
                 constant uint& n [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
  if (i < n) {
    float v = x[i];
    out[i] = v / (1.0f + exp(-v));
  }
}

// out = silu(gate) * up
kernel void swiglu(device const float* gate [[buffer(0)]],
                   device const float* up [[buffer(1)]],
                   device float* out [[buffer(2)]],
                   constant uint& n [[buffer(3)]],
                   uint i [[thread_position_in_grid]]) {
  if (i < n) {
    float g = gate[i];
    out[i] = g / (1.0f + exp(-g)) * up[i];
  }
}

// out = x * sigmoid(g) (a full output gate, as in Qwen3-Next's attention)
kernel void mul_sigmoid(device const float* x [[buffer(0)]],
                        device const float* g [[buffer(1)]],
                        device float* out [[buffer(2)]],
                        constant uint& n [[buffer(3)]],
                        uint i [[thread_position_in_grid]]) {
  if (i < n) out[i] = x[i] / (1.0f + exp(-g[i]));
}

// moe_combine adds the weighted expert outputs to the residual stream:
// out[d] = x[d] + sum_k w[k] * y[k, d] for k < topk, y laid out [topk, dim].
kernel void moe_combine(device const float* x [[buffer(0)]],
                        device const float* y [[buffer(1)]],
                        device const float* w [[buffer(2)]],
                        device float* out [[buffer(3)]],
                        constant uint& dim [[buffer(4)]],
                        constant uint& topk [[buffer(5)]],
                        uint i [[thread_position_in_grid]]) {
  if (i >= dim) return;
  float acc = x[i];
  for (uint k = 0; k < topk; k++) acc += w[k] * y[k * dim + i];
  out[i] = acc;
}

// add_gated (the sigmoid-gated shared expert): out = x + sigmoid(gate[0]) * y.
kernel void add_gated(device const float* x [[buffer(0)]],
                      device const float* y [[buffer(1)]],
                      device const float* gate [[buffer(2)]],
                      device float* out [[buffer(3)]],
                      constant uint& n [[buffer(4)]],
                      uint i [[thread_position_in_grid]]) {
  if (i >= n) return;
  float g = 1.0f / (1.0f + exp(-gate[0]));
  out[i] = x[i] + g * y[i];
}

// Row-broadcast forms, so that a batch of n rows is one dispatch rather than
// one per row (prefill). Launch: one thread per element of the n*cols
// outputs, threadgroups of 256.

// add_row (a bias on every row): out[i] = a[i] + b[i % cols].
kernel void add_row(device const float* a [[buffer(0)]],
                    device const float* b [[buffer(1)]],
                    device float* out [[buffer(2)]],
                    constant uint& n [[buffer(3)]],
                    constant uint& cols [[buffer(4)]],
                    uint i [[thread_position_in_grid]]) {
  if (i < n) out[i] = a[i] + b[i % cols];
}

// mul_sigmoid_row (a one-column gate per row, as a sigmoid-gated shared
// expert): out[i] = x[i] * sigmoid(g[i / cols]).
kernel void mul_sigmoid_row(device const float* x [[buffer(0)]],
                            device const float* g [[buffer(1)]],
                            device float* out [[buffer(2)]],
                            constant uint& n [[buffer(3)]],
                            constant uint& cols [[buffer(4)]],
                            uint i [[thread_position_in_grid]]) {
  if (i >= n) return;
  float s = 1.0f / (1.0f + exp(-g[i / cols]));
  out[i] = s * x[i];
}

// moe_combine_rows adds a batch's expert outputs in one dispatch:
// out[t, d] += sum_k w[t*topk + k] * y[rows[t*topk + k], d], y laid out
// [*, dim]; a route whose row is 0xffffffff (its expert did not run, or runs
// in another group of experts) adds nothing. Launch: groups (ceil(dim/256), tokens, 1), threads (256,1,1).
kernel void moe_combine_rows(device const float* y [[buffer(0)]],
                             device const uint* rows [[buffer(1)]],
                             device const float* w [[buffer(2)]],
                             device float* out [[buffer(3)]],
                             constant uint& dim [[buffer(4)]],
                             constant uint& topk [[buffer(5)]],
                             uint2 tg [[threadgroup_position_in_grid]],
                             uint lid [[thread_position_in_threadgroup]]) {
  uint d = tg.x * 256 + lid, t = tg.y;
  if (d >= dim) return;
  float acc = 0.0f;
  for (uint k = 0; k < topk; k++) {
    uint r = rows[t * topk + k];
    if (r != 0xffffffffu) acc += w[t * topk + k] * y[r * dim + d];
  }
  out[t * dim + d] += acc;
}

// copy_rows copies n rows of cols values between strided rows (a column
// block of one tensor into another, e.g. a prompt's keys into the cache):
// dst[t*dst_stride + c] = src[t*src_stride + c]. Launch: groups
// (ceil(cols/256), n, 1), threads (256,1,1).
kernel void copy_rows(device const float* src [[buffer(0)]],
                      device float* dst [[buffer(1)]],
                      constant uint& cols [[buffer(2)]],
                      constant uint& src_stride [[buffer(3)]],
                      constant uint& dst_stride [[buffer(4)]],
                      uint2 tg [[threadgroup_position_in_grid]],
                      uint lid [[thread_position_in_threadgroup]]) {
  uint c = tg.x * 256 + lid, t = tg.y;
  if (c < cols) dst[t * dst_stride + c] = src[t * src_stride + c];
}
