// Kernels of the Mamba-2 (SSD) mixer of Granite 4.0 and other hybrids, and
// the row scaling of the Granite multipliers; see kernels/mamba2.go for the
// math and the Go references.
#include <metal_stdlib>
using namespace metal;

// conv1d_bias: conv1d (delta.metal) with a per-channel bias added before
// the SiLU. state [channels, kernel_size-1] (oldest first, updated),
// x [n, channels], w [channels, kernel_size], bias [channels],
// out [n, channels]. kernel_size is at most 8.
// Launch: one thread per channel, threads (256,1,1), groups (ceil(channels/256),1,1).
constant constexpr uint kMambaMaxConv = 8;

struct ConvBiasParams {
  uint channels;
  uint kernel_size;
  uint n;
};

kernel void conv1d_bias(device float* state [[buffer(0)]],
                        device const float* x [[buffer(1)]],
                        device const float* w [[buffer(2)]],
                        device const float* bias [[buffer(3)]],
                        device float* out [[buffer(4)]],
                        constant ConvBiasParams& p [[buffer(5)]],
                        uint c [[thread_position_in_grid]]) {
  if (c >= p.channels) return;
  uint hist = p.kernel_size - 1, C = p.channels;
  device float* s = state + c * hist;
  device const float* wc = w + c * p.kernel_size;
  float window[kMambaMaxConv];
  for (uint j = 0; j < hist; j++) window[j] = s[j];
  for (uint t = 0; t < p.n; t++) {
    float xt = x[t * C + c];
    float acc = bias[c];
    for (uint j = 0; j < hist; j++) acc += wc[j] * window[j];
    acc += wc[hist] * xt;
    out[t * C + c] = acc / (1.0f + exp(-acc));
    for (uint j = 0; j + 1 < hist; j++) window[j] = window[j + 1];
    if (hist > 0) window[hist - 1] = xt;
  }
  for (uint j = 0; j < hist; j++) s[j] = window[j];
}

// mamba2_scan: n tokens of the scan for head h, token after token:
//   dt = clamp(softplus(dt_raw + dt_bias[h]), dt_min, dt_max)   (dt_max <= 0: no upper limit)
//   S  = exp(dt A[h]) S + dt x ⊗ B;  y = S C + D[h] x
// state [heads, head_dim, state_dim] (updated); x, y rows of heads*head_dim,
// dt rows of heads, b, c rows of groups*state_dim, each at its own row
// stride (x, b and c are column views of one conv output). Head h reads
// group h/(heads/groups). state_dim is at most 256.
// Launch: threads (T,1,1) with T a multiple of 32 up to 256, groups
// (heads,1,1); thread j owns rows j, j+T, ... of its head's state.
constant constexpr uint kMambaMaxState = 256;

struct ScanParams {
  uint heads;
  uint head_dim;
  uint groups;
  uint state_dim;
  uint n;
  uint x_stride;
  uint dt_stride;
  uint bc_stride;
  uint y_stride;
  float dt_min;
  float dt_max;
};

kernel void mamba2_scan(device float* state [[buffer(0)]],
                        device const float* x [[buffer(1)]],
                        device const float* dt [[buffer(2)]],
                        device const float* b [[buffer(3)]],
                        device const float* c [[buffer(4)]],
                        device float* y [[buffer(5)]],
                        device const float* a [[buffer(6)]],
                        device const float* d [[buffer(7)]],
                        device const float* dt_bias [[buffer(8)]],
                        constant ScanParams& p [[buffer(9)]],
                        uint h [[threadgroup_position_in_grid]],
                        uint tid [[thread_index_in_threadgroup]],
                        uint nthreads [[threads_per_threadgroup]]) {
  threadgroup float bt[kMambaMaxState];
  threadgroup float ct[kMambaMaxState];
  uint N = p.state_dim, P = p.head_dim;
  uint g = h / (p.heads / p.groups);
  device float* s = state + h * P * N;
  for (uint t = 0; t < p.n; t++) {
    device const float* bg = b + t * p.bc_stride + g * N;
    device const float* cg = c + t * p.bc_stride + g * N;
    for (uint i = tid; i < N; i += nthreads) {
      bt[i] = bg[i];
      ct[i] = cg[i];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float v = dt[t * p.dt_stride + h] + dt_bias[h];
    float step = v > 20.0f ? v : precise::log(1.0f + precise::exp(v));
    step = max(step, p.dt_min);
    if (p.dt_max > 0.0f) step = min(step, p.dt_max);
    float decay = precise::exp(step * a[h]);
    for (uint r = tid; r < P; r += nthreads) {
      float xr = x[t * p.x_stride + h * P + r];
      float dx = step * xr;
      device float* sr = s + r * N;
      float acc = 0;
      for (uint i = 0; i < N; i++) {
        float nv = decay * sr[i] + dx * bt[i];
        sr[i] = nv;
        acc += nv * ct[i];
      }
      y[t * p.y_stride + h * P + r] = acc + d[h] * xr;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}

// rmsnorm_gate (Mamba-2's norm, gate first): per dim-sized chunk of each
// row of width values, v = x * silu(z); out = v / rms(v) * w, w holding
// width values (chunk k uses w[k*dim ...]). out may be x.
// Launch: one threadgroup per chunk, threads (T,1,1) with T a multiple of
// 32 up to 1024, groups (rows*width/dim,1,1).
struct GateNormParams {
  uint dim;
  float eps;
  uint width;
};

inline float mamba_group_sum(float v, threadgroup float* scratch, uint sg, uint lane, uint nsg) {
  v = simd_sum(v);
  if (lane == 0) scratch[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    float t = lane < nsg ? scratch[lane] : 0.0f;
    t = simd_sum(t);
    if (lane == 0) scratch[32] = t;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return scratch[32];
}

kernel void rmsnorm_gate(device const float* x [[buffer(0)]],
                         device const float* z [[buffer(1)]],
                         device const float* w [[buffer(2)]],
                         device float* out [[buffer(3)]],
                         constant GateNormParams& p [[buffer(4)]],
                         uint chunk [[threadgroup_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]],
                         uint nthreads [[threads_per_threadgroup]],
                         uint sg [[simdgroup_index_in_threadgroup]],
                         uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float scratch[33];
  device const float* xr = x + chunk * p.dim;
  device const float* zr = z + chunk * p.dim;
  device const float* wr = w + (chunk % (p.width / p.dim)) * p.dim;
  device float* o = out + chunk * p.dim;
  float ss = 0;
  for (uint i = tid; i < p.dim; i += nthreads) {
    float g = zr[i];
    float v = xr[i] * (g / (1.0f + exp(-g)));
    ss += v * v;
  }
  float inv = precise::rsqrt(mamba_group_sum(ss, scratch, sg, lane, (nthreads + 31) / 32) / float(p.dim) + p.eps);
  for (uint i = tid; i < p.dim; i += nthreads) {
    float g = zr[i];
    float v = xr[i] * (g / (1.0f + exp(-g)));
    o[i] = v * inv * wr[i];
  }
}

// scale_rows: out = s * x over count values (out may be x).
// Launch: one thread per value, threads (256,1,1), groups (ceil(count/256),1,1).
struct ScaleParams {
  uint count;
  float s;
};

kernel void scale_rows(device const float* x [[buffer(0)]],
                       device float* out [[buffer(1)]],
                       constant ScaleParams& p [[buffer(2)]],
                       uint i [[thread_position_in_grid]]) {
  if (i >= p.count) return;
  out[i] = x[i] * p.s;
}
