// Quantized matrix-vector kernels over MLX affine quantization.
//
// A weight [rows, cols] at BITS bits with groups of GS: each row is a
// little-endian bit stream of cols*BITS/32 uint32 words, element j at bits
// [BITS*j, BITS*j+BITS); scales and biases are [rows, cols/GS] of S (bfloat
// or half); w = scale*q + bias. cols must be a multiple of GS (and so of 32).
//
// Every kernel here but qmm and qmm_rows computes 4 rows per SIMD-group and 2 SIMD-groups per
// threadgroup, threads (64,1,1). Each lane walks the columns in chunks of VPT
// values (two words or more), so a row's words are read by consecutive
// lanes.
//   qmv, gather_qmv, gather_qmv_swiglu, and the _slots variants of the
//   gathers (decode): groups (ceil(rows/8), n, 1)
//     for n vectors (tokens, or token*expert pairs). Per chunk a lane
//     computes s*sum(q*x) + b*sum(x): the bias term needs the chunk's sum of
//     x only once for all 4 rows.
// qmm and qmm_rows (prefill) multiply 8x8 simdgroup matrices in tiles of 32
// tokens x 32 rows: threads (128,1,1), groups (ceil(rows/32), ceil(n/32), 1).
#include <metal_stdlib>
using namespace metal;

constant constexpr int kRowsPerSimdgroup = 4;
constant constexpr int kSimdgroups = 2;

// Values per lane per step: a whole number of words, at least two (as
// MLX's qmv_fast loads them: 16 values at 4 bits, 32 at 2, 8 at 8; the
// odd widths need 32 values (3 or 5 words) or 16 (6 bits, 3 words) to end
// on a word). A multiple of 8 that divides every group size.
template <int BITS> constexpr int values_per_thread() {
  return (BITS & (BITS - 1)) == 0 ? 64 / BITS : 32 / (BITS & -BITS);
}

// load_x reads VPT values of x into xv and returns their sum. For 4 bits the
// values are pre-scaled by 1, 1/16, 1/256, 1/4096 so that qdot can multiply
// the nibbles in place without shifting them down.
template <int BITS, int VPT> float load_x(device const float* x, thread float* xv) {
  float sum = 0;
  for (int j = 0; j < VPT; j += 4) {
    float a = x[j], b = x[j + 1], c = x[j + 2], d = x[j + 3];
    sum += a + b + c + d;
    if (BITS == 4) {
      xv[j] = a;
      xv[j + 1] = b / 16.0f;
      xv[j + 2] = c / 256.0f;
      xv[j + 3] = d / 4096.0f;
    } else {
      xv[j] = a;
      xv[j + 1] = b;
      xv[j + 2] = c;
      xv[j + 3] = d;
    }
  }
  return sum;
}

// extract returns packed value j of the bit stream starting at w.
template <int BITS> uint extract(device const uint* w, int j) {
  uint bit = uint(j * BITS), word = bit / 32, shift = bit % 32;
  uint v = w[word] >> shift;
  if (shift + BITS > 32) v |= w[word + 1] << (32 - shift);
  return v & ((1u << BITS) - 1u);
}

// qdot returns sum_j q_j * xv_j over the VPT packed values starting at w
// (word-aligned).
template <int BITS, int VPT> float qdot(device const uint* w, thread const float* xv) {
  float acc = 0;
  if (BITS == 4) {
    device const ushort* ws = (device const ushort*)w;
    for (int i = 0; i < VPT / 4; i++) {
      uint v = ws[i];
      acc += xv[4 * i] * float(v & 0x000fu) + xv[4 * i + 1] * float(v & 0x00f0u) +
             xv[4 * i + 2] * float(v & 0x0f00u) + xv[4 * i + 3] * float(v & 0xf000u);
    }
  } else if (BITS == 8) {
    device const uchar* wb = (device const uchar*)w;
    for (int j = 0; j < VPT; j++) acc += xv[j] * float(wb[j]);
  } else {
    for (int j = 0; j < VPT; j++) acc += xv[j] * float(extract<BITS>(w, j));
  }
  return acc;
}

// dequant writes the VPT weights s*q+b packed at w (word-aligned) to wv.
template <int BITS, int VPT> void dequant(device const uint* w, float s, float b, thread float* wv) {
  for (int j = 0; j < VPT; j++) wv[j] = s * float(extract<BITS>(w, j)) + b;
}

// QRows addresses the rows a SIMD-group works on: row r of a matrix whose
// data starts at w, scales, biases.
template <typename S> struct QMatrix {
  device const uint* w;
  device const S* scales;
  device const S* biases;
};

// rows_dot accumulates, for kRowsPerSimdgroup rows starting at row0 of m,
// this lane's share of the dot products with x; out-of-range rows are
// clamped (the caller drops them) so that every lane takes the same path.
template <int BITS, int GS, typename S>
void rows_dot(QMatrix<S> m, uint rows, uint cols, uint row0, device const float* x, uint lane,
              thread float* acc) {
  constexpr int VPT = values_per_thread<BITS>();
  const uint words = cols * BITS / 32, groups = cols / GS;
  float xv[VPT];
  for (int i = 0; i < kRowsPerSimdgroup; i++) acc[i] = 0;
  for (uint c = lane * VPT; c < cols; c += 32 * VPT) {
    float xsum = load_x<BITS, VPT>(x + c, xv);
    uint g = c / GS;
    for (int i = 0; i < kRowsPerSimdgroup; i++) {
      uint r = min(row0 + uint(i), rows - 1);
      float s = float(m.scales[r * groups + g]), b = float(m.biases[r * groups + g]);
      acc[i] += s * qdot<BITS, VPT>(m.w + r * words + c * BITS / 32, xv) + b * xsum;
    }
  }
  for (int i = 0; i < kRowsPerSimdgroup; i++) acc[i] = simd_sum(acc[i]);
}

struct QmvParams {
  uint rows;  // output length
  uint cols;  // input length
};

// qmv: y[t] = W x[t] for x [n, cols], y [n, rows].
template <int BITS, int GS, typename S>
kernel void qmv(device const uint* w [[buffer(0)]],
                device const S* scales [[buffer(1)]],
                device const S* biases [[buffer(2)]],
                device const float* x [[buffer(3)]],
                device float* y [[buffer(4)]],
                constant QmvParams& p [[buffer(5)]],
                uint2 tg [[threadgroup_position_in_grid]],
                uint sg [[simdgroup_index_in_threadgroup]],
                uint lane [[thread_index_in_simdgroup]]) {
  uint row0 = (tg.x * kSimdgroups + sg) * kRowsPerSimdgroup;
  float acc[kRowsPerSimdgroup];
  QMatrix<S> m = {w, scales, biases};
  rows_dot<BITS, GS, S>(m, p.rows, p.cols, row0, x + tg.y * p.cols, lane, acc);
  if (lane == 0) {
    for (int i = 0; i < kRowsPerSimdgroup; i++)
      if (row0 + i < p.rows) y[tg.y * p.rows + row0 + i] = acc[i];
  }
}

struct GatherParams {
  uint rows;     // output length of one expert
  uint cols;     // input length
  uint x_group;  // pairs per input vector: topk when experts share the token's x, 1 for one x per pair
};

// slot_matrix returns expert slot's matrix within a pool of slots laid out
// [slots, rows, ...].
template <int BITS, int GS, typename S>
QMatrix<S> slot_matrix(device const uint* w, device const S* scales, device const S* biases, int slot,
                       uint rows, uint cols) {
  QMatrix<S> m;
  m.w = w + uint(slot) * rows * (cols * BITS / 32);
  m.scales = scales + uint(slot) * rows * (cols / GS);
  m.biases = biases + uint(slot) * rows * (cols / GS);
  return m;
}

// What a gather kernel stores from a row's two dot products: silu(g)*u for
// the fused gate/up projection, g alone for a single matrix.
struct Silu {
  static float apply(float g, float u) { return g / (1.0f + exp(-g)) * u; }
};
struct First {
  static float apply(float g, float) { return g; }
};

// gather_rows computes this SIMD-group's rows of W x (and of U x when two)
// for pair k = tg.y and stores F(Wx, Ux) in y[k]; a pair whose slot is
// missing (present false) gets F(0, 0) = 0.
template <int BITS, int GS, typename S, typename F>
void gather_rows(QMatrix<S> wm, QMatrix<S> um, bool two, bool present, device const float* x,
                 device float* y, constant GatherParams& p, uint2 tg, uint sg, uint lane) {
  uint row0 = (tg.x * kSimdgroups + sg) * kRowsPerSimdgroup;
  float g[kRowsPerSimdgroup] = {0, 0, 0, 0}, u[kRowsPerSimdgroup] = {0, 0, 0, 0};
  if (present) {
    device const float* xk = x + (tg.y / p.x_group) * p.cols;
    rows_dot<BITS, GS, S>(wm, p.rows, p.cols, row0, xk, lane, g);
    if (two) rows_dot<BITS, GS, S>(um, p.rows, p.cols, row0, xk, lane, u);
  }
  if (lane == 0) {
    for (int i = 0; i < kRowsPerSimdgroup; i++)
      if (row0 + i < p.rows) y[tg.y * p.rows + row0 + i] = F::apply(g[i], u[i]);
  }
}

// gather_qmv: for each (token, expert) pair k, y[k] = W[slot] x[k / x_group]
// with slot = table[ids[k]] in a pool of expert slots. A negative slot (an
// expert that is not resident) gives y[k] = 0. y is [pairs, rows].
template <int BITS, int GS, typename S>
kernel void gather_qmv(device const uint* w [[buffer(0)]],
                       device const S* scales [[buffer(1)]],
                       device const S* biases [[buffer(2)]],
                       device const float* x [[buffer(3)]],
                       device float* y [[buffer(4)]],
                       device const int* ids [[buffer(5)]],
                       device const int* table [[buffer(6)]],
                       constant GatherParams& p [[buffer(7)]],
                       uint2 tg [[threadgroup_position_in_grid]],
                       uint sg [[simdgroup_index_in_threadgroup]],
                       uint lane [[thread_index_in_simdgroup]]) {
  int slot = table[ids[tg.y]];
  QMatrix<S> m = slot_matrix<BITS, GS, S>(w, scales, biases, max(slot, 0), p.rows, p.cols);
  gather_rows<BITS, GS, S, First>(m, m, false, slot >= 0, x, y, p, tg, sg, lane);
}

// gather_qmv_swiglu: the fused gate/up projection of a SwiGLU expert,
// y[k] = silu(G[slot] x) * (U[slot] x), otherwise as gather_qmv.
template <int BITS, int GS, typename S>
kernel void gather_qmv_swiglu(device const uint* gw [[buffer(0)]],
                              device const S* gscales [[buffer(1)]],
                              device const S* gbiases [[buffer(2)]],
                              device const uint* uw [[buffer(3)]],
                              device const S* uscales [[buffer(4)]],
                              device const S* ubiases [[buffer(5)]],
                              device const float* x [[buffer(6)]],
                              device float* y [[buffer(7)]],
                              device const int* ids [[buffer(8)]],
                              device const int* table [[buffer(9)]],
                              constant GatherParams& p [[buffer(10)]],
                              uint2 tg [[threadgroup_position_in_grid]],
                              uint sg [[simdgroup_index_in_threadgroup]],
                              uint lane [[thread_index_in_simdgroup]]) {
  int slot = table[ids[tg.y]], s = max(slot, 0);
  gather_rows<BITS, GS, S, Silu>(slot_matrix<BITS, GS, S>(gw, gscales, gbiases, s, p.rows, p.cols),
                                 slot_matrix<BITS, GS, S>(uw, uscales, ubiases, s, p.rows, p.cols), true,
                                 slot >= 0, x, y, p, tg, sg, lane);
}

// The pager's slot layout (experts.LayerLayout): slot s of a layer's pool
// starts s*stride bytes into it and holds all parts of one expert (gate
// weight, scales, biases, up ..., down ...), each at its own byte offset.
// SlotParts names one matrix's three parts in that layout.
struct SlotParts {
  uint stride;  // bytes from one slot to the next (LayerLayout.SlotStride)
  uint w;       // byte offsets within a slot (LayerLayout.PartOffsets)
  uint scales;
  uint biases;
};

// slot_parts returns the matrix that parts describe in slot of pool. The
// offset is 64-bit: a pool may exceed 4 GiB.
template <typename S> QMatrix<S> slot_parts(device const uchar* pool, int slot, constant SlotParts& s) {
  device const uchar* base = pool + ulong(slot) * ulong(s.stride);
  QMatrix<S> m;
  m.w = (device const uint*)(base + s.w);
  m.scales = (device const S*)(base + s.scales);
  m.biases = (device const S*)(base + s.biases);
  return m;
}

// gather_qmv_slots: gather_qmv over the pager's pool, whose slots hold whole
// experts; the table is read on the GPU, so the host need not know which
// slots the router chose when it encodes the dispatch.
template <int BITS, int GS, typename S>
kernel void gather_qmv_slots(device const uchar* pool [[buffer(0)]],
                             device const float* x [[buffer(1)]],
                             device float* y [[buffer(2)]],
                             device const int* ids [[buffer(3)]],
                             device const int* table [[buffer(4)]],
                             constant GatherParams& p [[buffer(5)]],
                             constant SlotParts& parts [[buffer(6)]],
                             uint2 tg [[threadgroup_position_in_grid]],
                             uint sg [[simdgroup_index_in_threadgroup]],
                             uint lane [[thread_index_in_simdgroup]]) {
  int slot = table[ids[tg.y]];
  QMatrix<S> m = slot_parts<S>(pool, max(slot, 0), parts);
  gather_rows<BITS, GS, S, First>(m, m, false, slot >= 0, x, y, p, tg, sg, lane);
}

// gather_qmv_swiglu_slots: gather_qmv_swiglu over the pager's pool, the
// gate's parts at buffer 6 and the up projection's at buffer 7.
template <int BITS, int GS, typename S>
kernel void gather_qmv_swiglu_slots(device const uchar* pool [[buffer(0)]],
                                    device const float* x [[buffer(1)]],
                                    device float* y [[buffer(2)]],
                                    device const int* ids [[buffer(3)]],
                                    device const int* table [[buffer(4)]],
                                    constant GatherParams& p [[buffer(5)]],
                                    constant SlotParts& gate [[buffer(6)]],
                                    constant SlotParts& up [[buffer(7)]],
                                    uint2 tg [[threadgroup_position_in_grid]],
                                    uint sg [[simdgroup_index_in_threadgroup]],
                                    uint lane [[thread_index_in_simdgroup]]) {
  int slot = table[ids[tg.y]], s = max(slot, 0);
  gather_rows<BITS, GS, S, Silu>(slot_parts<S>(pool, s, gate), slot_parts<S>(pool, s, up), true, slot >= 0, x, y,
                                 p, tg, sg, lane);
}

struct QmmParams {
  uint rows;
  uint cols;
  uint n;  // tokens
};

// qmm tiles: a threadgroup computes 32 tokens x 32 rows with 4 SIMD-groups
// of 16 x 16 (2 x 2 simdgroup_matrix 8x8 tiles each), 32 columns per step.
constant constexpr int kQmmTile = 32;
constant constexpr int kQmmThreads = 128;

// qmm_tile is the body of qmm and qmm_rows: y = x Wᵀ for y [n, rows],
// where row t of x is x[xrow[t]] (x[t] without xrow). Per 32-column step
// the threadgroup stages x's tile [token][col] and the dequantized weights
// transposed [col][row] in the kernel's threadgroup arrays (each weight
// dequantized once for 32 tokens), then SIMD-group sg multiplies tokens
// (sg/2)*16.. by rows (sg%2)*16.. with 8x8 simdgroup matrices; the results
// go out through threadgroup memory so that ragged edges are masked.
template <int BITS, int GS, typename S>
inline void qmm_tile(device const uint* w, device const S* scales, device const S* biases, device const float* x,
                     device const uint* xrow, device float* y, constant QmmParams& p, uint2 tg, uint tid, uint sg,
                     threadgroup float* xs, threadgroup float* ws, threadgroup float* ys) {
  constexpr int T = kQmmTile;
  const uint words = p.cols * BITS / 32, groups = p.cols / GS;
  const uint row0 = tg.x * T, t0 = tg.y * T;
  const uint st = (sg / 2) * 16, sr = (sg % 2) * 16;
  // This thread stages token (and row) li of the tile, columns lc..lc+7.
  const uint li = tid / 4, lc = (tid % 4) * 8;
  const uint xt = t0 + li, wr = row0 + li;
  device const float* xr = x;
  if (xt < p.n) xr = x + (xrow ? xrow[xt] : xt) * p.cols;
  // Each 32-column step sums into part, which is then added to acc (as
  // eye * part + acc, exact): blocked summation keeps the rounding error of
  // a long row near that of the matvec kernels' per-lane partial sums.
  simdgroup_float8x8 acc[2][2], part[2][2];
  const simdgroup_float8x8 eye(1.0f);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
  for (uint c0 = 0; c0 < p.cols; c0 += T) {
    for (int j = 0; j < 8; j++) xs[li * T + lc + j] = xt < p.n ? xr[c0 + lc + j] : 0.0f;
    if (wr < p.rows) {
      // c0 is a multiple of 32 and so of nothing finer than a group.
      uint g = c0 / GS;
      float s = float(scales[wr * groups + g]), b = float(biases[wr * groups + g]);
      device const uint* row = w + wr * words;
      for (int j = 0; j < 8; j++) ws[(lc + j) * T + li] = s * float(extract<BITS>(row, int(c0 + lc + j))) + b;
    } else {
      for (int j = 0; j < 8; j++) ws[(lc + j) * T + li] = 0.0f;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++) part[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
    for (int k = 0; k < T; k += 8) {
      simdgroup_float8x8 a[2], b[2];
      for (int i = 0; i < 2; i++) simdgroup_load(a[i], xs + (st + 8 * i) * T + k, T);
      for (int j = 0; j < 2; j++) simdgroup_load(b[j], ws + k * T + sr + 8 * j, T);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) simdgroup_multiply_accumulate(part[i][j], a[i], b[j], part[i][j]);
    }
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++) simdgroup_multiply_accumulate(acc[i][j], eye, part[i][j], acc[i][j]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) simdgroup_store(acc[i][j], ys + (st + 8 * i) * T + sr + 8 * j, T);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint e = tid; e < uint(T * T); e += kQmmThreads) {
    uint t = e / T, r = e % T;
    if (t0 + t < p.n && row0 + r < p.rows) y[(t0 + t) * p.rows + row0 + r] = ys[e];
  }
}

// qmm: y = x Wᵀ for x [n, cols], y [n, rows] (prefill).
template <int BITS, int GS, typename S>
kernel void qmm(device const uint* w [[buffer(0)]],
                device const S* scales [[buffer(1)]],
                device const S* biases [[buffer(2)]],
                device const float* x [[buffer(3)]],
                device float* y [[buffer(4)]],
                constant QmmParams& p [[buffer(5)]],
                uint2 tg [[threadgroup_position_in_grid]],
                uint tid [[thread_index_in_threadgroup]],
                uint sg [[simdgroup_index_in_threadgroup]]) {
  threadgroup float xs[kQmmTile * kQmmTile];
  threadgroup float ws[kQmmTile * kQmmTile];
  threadgroup float ys[kQmmTile * kQmmTile];
  qmm_tile<BITS, GS, S>(w, scales, biases, x, nullptr, y, p, tg, tid, sg, xs, ws, ys);
}

// qmm_rows: y[t] = W x[xrow[t]] for t < n, y [n, rows]: an expert's
// matrix over the tokens routed to it (prefill MoE), launched as qmm.
template <int BITS, int GS, typename S>
kernel void qmm_rows(device const uint* w [[buffer(0)]],
                     device const S* scales [[buffer(1)]],
                     device const S* biases [[buffer(2)]],
                     device const float* x [[buffer(3)]],
                     device float* y [[buffer(4)]],
                     constant QmmParams& p [[buffer(5)]],
                     device const uint* xrow [[buffer(6)]],
                     uint2 tg [[threadgroup_position_in_grid]],
                     uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
  threadgroup float xs[kQmmTile * kQmmTile];
  threadgroup float ws[kQmmTile * kQmmTile];
  threadgroup float ys[kQmmTile * kQmmTile];
  qmm_tile<BITS, GS, S>(w, scales, biases, x, xrow, y, p, tg, tid, sg, xs, ws, ys);
}

// dequant_rows (embedding lookup): out[t] = row ids[t] of W, dequantized;
// out is [n, cols]. Launch: one thread per value, threads (256,1,1), groups
// (ceil(cols/256), n, 1).
template <int BITS, int GS, typename S>
kernel void dequant_rows(device const uint* w [[buffer(0)]],
                         device const S* scales [[buffer(1)]],
                         device const S* biases [[buffer(2)]],
                         device const int* ids [[buffer(3)]],
                         device float* out [[buffer(4)]],
                         constant uint& cols [[buffer(5)]],
                         uint2 gid [[thread_position_in_grid]]) {
  uint j = gid.x, t = gid.y;
  if (j >= cols) return;
  uint r = uint(ids[t]), groups = cols / GS;
  device const uint* row = w + r * (cols * BITS / 32);
  float s = float(scales[r * groups + j / GS]), b = float(biases[r * groups + j / GS]);
  out[t * cols + j] = s * float(extract<BITS>(row, int(j))) + b;
}

#define INSTANTIATE(name, ...) template [[host_name(name)]] [[kernel]] decltype(__VA_ARGS__) __VA_ARGS__;

#define QMV_INSTANCE(bits, gs, stype, sname)                                                \
  INSTANTIATE("qmv_b" #bits "_g" #gs "_" #sname, qmv<bits, gs, stype>)                      \
  INSTANTIATE("gather_qmv_b" #bits "_g" #gs "_" #sname, gather_qmv<bits, gs, stype>)        \
  INSTANTIATE("gather_qmv_swiglu_b" #bits "_g" #gs "_" #sname, gather_qmv_swiglu<bits, gs, stype>) \
  INSTANTIATE("gather_qmv_slots_b" #bits "_g" #gs "_" #sname, gather_qmv_slots<bits, gs, stype>) \
  INSTANTIATE("gather_qmv_swiglu_slots_b" #bits "_g" #gs "_" #sname, gather_qmv_swiglu_slots<bits, gs, stype>) \
  INSTANTIATE("qmm_b" #bits "_g" #gs "_" #sname, qmm<bits, gs, stype>)                      \
  INSTANTIATE("qmm_rows_b" #bits "_g" #gs "_" #sname, qmm_rows<bits, gs, stype>)            \
  INSTANTIATE("dequant_rows_b" #bits "_g" #gs "_" #sname, dequant_rows<bits, gs, stype>)

#define QMV_GROUPS(bits, stype, sname) \
  QMV_INSTANCE(bits, 32, stype, sname) \
  QMV_INSTANCE(bits, 64, stype, sname) \
  QMV_INSTANCE(bits, 128, stype, sname)

#define QMV_BITS(stype, sname) \
  QMV_GROUPS(2, stype, sname)  \
  QMV_GROUPS(3, stype, sname)  \
  QMV_GROUPS(4, stype, sname)  \
  QMV_GROUPS(5, stype, sname)  \
  QMV_GROUPS(6, stype, sname)  \
  QMV_GROUPS(8, stype, sname)

// With MSL_QUANT_BITS, MSL_QUANT_GROUP and MSL_QUANT_SCALES (bfloat or
// half) defined, only that format's kernels are instantiated: the Metal
// executor compiles this file per format it meets, not all 36 formats at
// start-up. The extra macro level expands the arguments before they are
// turned into names.
#define QMV_ONE(bits, gs, stype) QMV_INSTANCE_X(bits, gs, stype, MSL_QUANT_SNAME_##stype)
#define MSL_QUANT_SNAME_bfloat bf16
#define MSL_QUANT_SNAME_half f16
#define QMV_EXPAND(bits, gs, stype) QMV_ONE(bits, gs, stype)
#define QMV_INSTANCE_X(bits, gs, stype, sname) QMV_INSTANCE(bits, gs, stype, sname)

#if defined(MSL_QUANT_BITS)
QMV_EXPAND(MSL_QUANT_BITS, MSL_QUANT_GROUP, MSL_QUANT_SCALES)
#else
// bfloat exists from MSL 3.1 (macOS 14): on macOS 13 the bf16-scale
// instances are left out (their ops run on the host, counted by HostOps)
// rather than failing the whole library.
#if __METAL_VERSION__ >= 310
QMV_BITS(bfloat, bf16)
#endif
QMV_BITS(half, f16)
#endif
