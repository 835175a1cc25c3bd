package mslharness

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBfloatNeedsMSL31 checks that quantized.metal declares its bf16-scale
// instances only for MSL 3.1 and later (bfloat does not exist before), so a
// macOS 13 library (__METAL_VERSION__ 300) still has the f16 ones.
func TestBfloatNeedsMSL31(t *testing.T) {
	cxx, err := Compiler()
	if err != nil {
		t.Skip(err)
	}
	count := func(version string) (bf16, f16 int) {
		args := []string{"-std=c++17", "-E", "-P", "-DMSL_SCAN", "-I", "../msl/compat", "-x", "c++", "../msl/quantized.metal"}
		if version != "" {
			args = append(args, "-D__METAL_VERSION__="+version)
		}
		pre, err := exec.Command(cxx, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("preprocessing quantized.metal (MSL %q): %v\n%s", version, err, pre)
		}
		ks, err := ParseKernels(string(pre))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			bf16 += btoi(strings.HasSuffix(k.Name, "_bf16"))
			f16 += btoi(strings.HasSuffix(k.Name, "_f16"))
		}
		return bf16, f16
	}
	if bf16, f16 := count("300"); bf16 != 0 || f16 == 0 {
		t.Errorf("MSL 3.0: %d bf16 and %d f16 instances; want none and some", bf16, f16)
	}
	if bf16, f16 := count(""); bf16 == 0 || bf16 != f16 {
		t.Errorf("default (MSL 3.1): %d bf16 and %d f16 instances; want as many of each", bf16, f16)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
