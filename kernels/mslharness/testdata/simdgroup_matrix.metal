// Kernels that exercise metal_compat.h's simdgroup_matrix emulation, for
// simdgroup_test.go: the harness's own check that simdgroup_load, _store,
// _multiply_accumulate and _multiply behave as Metal documents them, and
// that misuse is caught.
#include <metal_stdlib>
using namespace metal;

// mma_tiles: out = a b + c for a [16,16], b [16,16], c [16,16], row-major.
// Threads (128,1,1), groups (1,1,1): SIMD-group s computes the 8x8 tile
// (s/2, s%2). a goes through threadgroup memory; b and c are read from
// device memory in place (c through matrix_origin).
kernel void mma_tiles(device const float* a [[buffer(0)]],
                      device const float* b [[buffer(1)]],
                      device const float* c [[buffer(2)]],
                      device float* out [[buffer(3)]],
                      uint tid [[thread_index_in_threadgroup]],
                      uint sg [[simdgroup_index_in_threadgroup]]) {
  threadgroup float as[16 * 16];
  for (uint i = tid; i < 256; i += 128) as[i] = a[i];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  uint ti = sg / 2, tj = sg % 2;
  simdgroup_float8x8 acc;
  simdgroup_load(acc, c, 16, ulong2(tj * 8, ti * 8));
  for (uint k = 0; k < 16; k += 8) {
    simdgroup_float8x8 am, bm;
    simdgroup_load(am, as + ti * 8 * 16 + k, 16);
    simdgroup_load(bm, b + k * 16 + tj * 8, 16);
    simdgroup_multiply_accumulate(acc, am, bm, acc);
  }
  simdgroup_store(acc, out + ti * 8 * 16 + tj * 8, 16);
}

// mma_transposed: out = a b + 4I - 1/8 for a [8,8] and bt [8,8] (b's
// transpose, read with transpose_matrix), row-major: the extra terms come
// from diagonal (value-constructed) and filled matrices. Threads (32,1,1).
kernel void mma_transposed(device const float* a [[buffer(0)]],
                           device const float* bt [[buffer(1)]],
                           device float* out [[buffer(2)]],
                           uint lane [[thread_index_in_simdgroup]]) {
  simdgroup_float8x8 am, bm, d;
  simdgroup_load(am, a);
  simdgroup_load(bm, bt, 8, ulong2(0), true);
  simdgroup_multiply(d, am, bm);
  simdgroup_float8x8 diag(2.0f);
  simdgroup_float8x8 ones = make_filled_simdgroup_matrix<float, 8>(1.0f);
  simdgroup_multiply_accumulate(d, diag, ones, d);  // adds 2 to every element
  simdgroup_float8x8 minus = make_filled_simdgroup_matrix<float, 8, 8>(-0.25f);
  simdgroup_multiply_accumulate(d, minus, ones, d);  // subtracts 2 again
  simdgroup_multiply_accumulate(d, diag, diag, d);    // adds 4 on the diagonal
  simdgroup_float8x8 half_diag(0.5f);
  simdgroup_multiply_accumulate(d, half_diag, minus, d);  // subtracts 1/8 everywhere
  simdgroup_store(d, out);
  (void)lane;
}

// Planted misuse, each launched with threads (32,1,1) like mma_transposed.

// Only half the lanes load: the others never reach the collective.
kernel void mma_divergent(device const float* a [[buffer(0)]],
                          device const float* bt [[buffer(1)]],
                          device float* out [[buffer(2)]],
                          uint lane [[thread_index_in_simdgroup]]) {
  simdgroup_float8x8 am;
  if (lane < 16) simdgroup_load(am, a);
  simdgroup_barrier(mem_flags::mem_none);
  if (lane < 16) simdgroup_store(am, out);
  (void)bt;
}

// Each lane passes its own address.
kernel void mma_lane_pointer(device const float* a [[buffer(0)]],
                             device const float* bt [[buffer(1)]],
                             device float* out [[buffer(2)]],
                             uint lane [[thread_index_in_simdgroup]]) {
  simdgroup_float8x8 am;
  simdgroup_load(am, a + (lane & 1));
  simdgroup_store(am, out);
  (void)bt;
}

// The lanes write a into threadgroup memory and load it without a barrier.
kernel void mma_missing_barrier(device const float* a [[buffer(0)]],
                                device const float* bt [[buffer(1)]],
                                device float* out [[buffer(2)]],
                                uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float as[64];
  for (uint i = lane; i < 64; i += 32) as[i] = a[i];
  simdgroup_float8x8 am, bm, d;
  simdgroup_load(am, as);  // BUG: simdgroup_barrier first
  simdgroup_load(bm, bt, 8, ulong2(0), true);
  simdgroup_multiply(d, am, bm);
  simdgroup_store(d, out);
}
