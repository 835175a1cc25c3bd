// Kernels of Mamba-1's selective state-space mixer (Jamba's mamba layers):
// the causal conv1d with bias and the selective scan, for n tokens each (a
// decode step is n = 1); see kernels/mamba1.go for the math.
#include <metal_stdlib>
using namespace metal;

// mamba1_conv: out = silu(bias + causal depthwise conv of x) for n tokens,
// continuing from state and leaving in it the last kernel_size-1 inputs.
// state [channels, kernel_size-1] (oldest first), x [n, channels], w
// [channels, kernel_size] (tap kernel_size-1 multiplies the newest input),
// bias [channels] (zeros for none), out [n, channels]; p = {channels,
// kernel_size, n}. kernel_size is at most 8.
// Launch: one thread per channel, threads (256,1,1), groups (ceil(channels/256),1,1).
constant constexpr uint kMamba1MaxConv = 8;

kernel void mamba1_conv(device float* state [[buffer(0)]],
                        device const float* x [[buffer(1)]],
                        device const float* w [[buffer(2)]],
                        device const float* bias [[buffer(3)]],
                        device float* out [[buffer(4)]],
                        constant uint* p [[buffer(5)]],
                        uint c [[thread_position_in_grid]]) {
  uint C = p[0], kernel_size = p[1], n = p[2];
  if (c >= C) return;
  uint hist = kernel_size - 1;
  device float* s = state + c * hist;
  device const float* wc = w + c * kernel_size;
  // window holds the last hist inputs, oldest first.
  float window[kMamba1MaxConv];
  for (uint j = 0; j < hist; j++) window[j] = s[j];
  for (uint t = 0; t < n; t++) {
    float xt = x[t * C + c];
    float acc = bias[c];
    for (uint j = 0; j < hist; j++) acc += wc[j] * window[j];
    acc += wc[hist] * xt;
    out[t * C + c] = acc / (1.0f + precise::exp(-acc));
    for (uint j = 0; j + 1 < hist; j++) window[j] = window[j + 1];
    if (hist > 0) window[hist - 1] = xt;
  }
  for (uint j = 0; j < hist; j++) s[j] = window[j];
}

// mamba1_scan: the selective scan over n tokens, token by token; channels
// are independent, one thread each:
//   delta = softplus(dt[t,c] + dt_bias[c])   (x itself above 20, as torch)
//   h[c,j] = exp(delta a[c,j]) h[c,j] + delta b[t,j] x[t,c]
//   out[t,c] = (sum_j h[c,j] cm[t,j] + d[c] x[t,c]) silu(z[t,c])
// state [channels, dstate] (h, updated), x, dt, z, out [n, channels] (out
// may be x or z), b and cm [n, dstate] rows bc_stride apart (column views
// of one projection), a [channels, dstate] (-exp(A_log)), d [channels],
// dt_bias [channels]; p = {channels, dstate, n, bc_stride}.
// Launch: one thread per channel, threads (256,1,1), groups (ceil(channels/256),1,1).
kernel void mamba1_scan(device float* state [[buffer(0)]],
                        device const float* x [[buffer(1)]],
                        device const float* dt [[buffer(2)]],
                        device const float* b [[buffer(3)]],
                        device const float* cm [[buffer(4)]],
                        device const float* z [[buffer(5)]],
                        device const float* a [[buffer(6)]],
                        device const float* d [[buffer(7)]],
                        device float* out [[buffer(8)]],
                        constant uint* p [[buffer(9)]],
                        device const float* dt_bias [[buffer(10)]],
                        uint c [[thread_position_in_grid]]) {
  uint C = p[0], N = p[1], n = p[2], ld = p[3];
  if (c >= C) return;
  device float* h = state + c * N;
  device const float* ac = a + c * N;
  for (uint t = 0; t < n; t++) {
    uint k = t * C + c;
    float sp = dt[k] + dt_bias[c];
    float dtv = sp > 20.0f ? sp : precise::log(1.0f + precise::exp(sp));
    float xv = x[k], zv = z[k];
    float dx = dtv * xv, y = 0.0f;
    device const float* bt = b + t * ld;
    device const float* ct = cm + t * ld;
    for (uint j = 0; j < N; j++) {
      float hj = precise::exp(dtv * ac[j]) * h[j] + dx * bt[j];
      h[j] = hj;
      y += hj * ct[j];
    }
    out[k] = (y + d[c] * xv) * (zv / (1.0f + precise::exp(-zv)));
  }
}
