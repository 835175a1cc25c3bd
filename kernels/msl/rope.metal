// Rotary position embedding, in place on x [n, heads, head_dim]; token t is
// at position pos[t]. The first rotary_dim values of each head are rotated
// (partial rotary leaves the rest alone), as pairs (i, i+rotary_dim/2) (neox
// half split) or (2i, 2i+1) (interleaved). inv_freq [rotary_dim/2] comes from
// the host (kernels.RopeInvFreq), which is where YaRN's frequency ramp is
// applied; YaRN's magnitude factor is p.scale (1 otherwise).
//
// Launch: one thread per pair: threads (32,1,1), groups
// (ceil(rotary_dim/2 / 32), heads, n).
#include <metal_stdlib>
using namespace metal;

struct RopeParams {
  uint heads;
  uint head_dim;
  uint rotary_dim;
  float scale;
  uint interleaved;
};

kernel void rope(device float* x [[buffer(0)]],
                 device const int* pos [[buffer(1)]],
                 device const float* inv_freq [[buffer(2)]],
                 constant RopeParams& p [[buffer(3)]],
                 uint3 gid [[thread_position_in_grid]]) {
  uint half_dim = p.rotary_dim / 2, i = gid.x, h = gid.y, t = gid.z;
  if (i >= half_dim) return;
  // The angle pos*inv_freq in float loses absolute precision at large
  // positions; carry the rounding error of the product (exact with fma) and
  // fold it in to first order.
  float fp = float(pos[t]), f = inv_freq[i];
  float a = fp * f;
  float err = fma(fp, f, -a);
  float c = precise::cos(a), s = precise::sin(a);
  float cs = (c - s * err) * p.scale, sn = (s + c * err) * p.scale;
  device float* v = x + (t * p.heads + h) * p.head_dim;
  uint ia = i, ib = i + half_dim;
  if (p.interleaved) {
    ia = 2 * i;
    ib = 2 * i + 1;
  }
  float x1 = v[ia], x2 = v[ib];
  v[ia] = x1 * cs - x2 * sn;
  v[ib] = x2 * cs + x1 * sn;
}
