package mslharness

import (
	"os"
	"os/exec"
	"path/filepath"
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

// TestShaderLanguageRules builds planted shaders that a CPU C++17 build
// would accept and Metal rejects (a C++17 construct, a double, a mutable
// program-scope variable) and checks
// that Build rejects each with its reason.
func TestShaderLanguageRules(t *testing.T) {
	cxx, err := Compiler()
	if err != nil {
		t.Skip(err)
	}
	if !strings.Contains(filepath.Base(cxx), "clang") {
		t.Skip("the language checks need clang")
	}
	for name, c := range map[string]struct{ body, want string }{
		"cxx17":  {"if constexpr (sizeof(float) == 4) { out[i] = 1.0f; }", "C++17"},
		"double": {"double d = 1.0; out[i] = float(d);", "msl_double_does_not_exist_in_Metal"},
		"global": {"out[i] = planted_global;", "planted_global"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, name+".metal")
			src := "#include <metal_stdlib>\nusing namespace metal;\n\n"
			if name == "global" {
				src += "float planted_global = 1.0f;\n\n" // a mutable program-scope variable
			}
			src += "kernel void planted(device float* out [[buffer(0)]],\n" +
				"                    uint i [[thread_position_in_grid]]) {\n  " + c.body + "\n}\n"
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Build(file, "../msl/compat", dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build of a shader with %s: %v; want an error mentioning %q", name, err, c.want)
			}
		})
	}
}
