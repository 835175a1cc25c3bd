package mslharness

import (
	"reflect"
	"testing"
)

// Preprocessed shader source as the scan sees it (-DMSL_SCAN): plain kernels,
// a template with instantiations named by adjacent string literals, and a
// helper that is not a kernel.
const scanned = `
inline float helper(float x) { return x; }
__msl_kernel__ void add(device const float* a [[buffer(0)]],
                        device float* out [[ buffer( 2 ) ]],
                        uint i [[thread_position_in_grid]]) { out[i] = a[i]; }
template <int B, typename S>
__msl_kernel__ void qmv(device const uint* w [[buffer(0)]], constant P& p [[buffer(5)]],
                        uint2 tg [[threadgroup_position_in_grid]],
                        uint lane [[thread_index_in_simdgroup]]) {}
template [[host_name("qmv_b" "4" "_" "bf16")]] [[__msl_kernel__]] decltype(qmv<4, bfloat>) qmv<4, bfloat>;
template [[host_name("qmv_b8")]] [[__msl_kernel__]] decltype(qmv<8, half>) qmv<8, half>;
`

func TestParseKernels(t *testing.T) {
	ks, err := ParseKernels(scanned)
	if err != nil {
		t.Fatal(err)
	}
	qmvParams := []Param{{"w", "buffer", 0}, {"p", "buffer", 5}, {"tg", "threadgroup_position_in_grid", 0}, {"lane", "thread_index_in_simdgroup", 0}}
	want := []Kernel{
		{Name: "add", Fn: "add", Params: []Param{{"a", "buffer", 0}, {"out", "buffer", 2}, {"i", "thread_position_in_grid", 0}}},
		{Name: "qmv_b4_bf16", Fn: "qmv<4, bfloat>", Params: qmvParams},
		{Name: "qmv_b8", Fn: "qmv<8, half>", Params: qmvParams},
	}
	if !reflect.DeepEqual(ks, want) {
		t.Errorf("ParseKernels:\n got %+v\nwant %+v", ks, want)
	}
}

func TestParseKernelsErrors(t *testing.T) {
	for name, src := range map[string]string{
		"parameter without attribute": `__msl_kernel__ void f(device float* x) {}`,
		"unsupported attribute":       `__msl_kernel__ void f(device float* x [[threadgroup(0)]]) {}`,
		"instance of a non-kernel":    `template [[host_name("g1")]] [[__msl_kernel__]] decltype(g<1>) g<1>;`,
		"duplicate name":              `__msl_kernel__ void f(uint i [[thread_position_in_grid]]) {} __msl_kernel__ void f(uint i [[thread_position_in_grid]]) {}`,
	} {
		if _, err := ParseKernels(src); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
