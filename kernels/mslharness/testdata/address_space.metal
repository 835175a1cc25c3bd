// A kernel that compiles as plain C++ but not as Metal: it keeps a device
// pointer in a pointer to the thread address space (see planted_test.go).
#include <metal_stdlib>
using namespace metal;

kernel void scale_rows(device float* x [[buffer(0)]],
                       constant uint& dim [[buffer(1)]],
                       uint row [[thread_position_in_grid]]) {
  float* r = x + row * dim;  // BUG: must be device float*
  for (uint i = 0; i < dim; i++) r[i] *= 2.0f;
}
