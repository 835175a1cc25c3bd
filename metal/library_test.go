package metal

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels/msl"
	"github.com/mlx-moe/mlx-moe/kernels/mslharness"
)

// TestQuantizedPerFormat checks the lazy compilation of quantized.metal:
// for every quantized kernel of the whole file, the source with
// quantFormat's defines holds exactly the kernels of that format, the
// kernel among them.
func TestQuantizedPerFormat(t *testing.T) {
	cxx, err := mslharness.Compiler()
	if err != nil {
		t.Skip(err)
	}
	src, err := msl.Source(quantizedFile)
	if err != nil {
		t.Fatal(err)
	}
	kernelsOf := func(source string) []string {
		cmd := exec.Command(cxx, "-std=c++17", "-E", "-P", "-DMSL_SCAN", "-I", filepath.Join("..", "kernels", "msl", "compat"), "-x", "c++", "-")
		cmd.Stdin = strings.NewReader(source)
		pre, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("preprocessing: %v\n%s", err, pre)
		}
		ks, err := mslharness.ParseKernels(string(pre))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, k := range ks {
			names = append(names, k.Name)
		}
		slices.Sort(names)
		return names
	}
	all := kernelsOf(src)
	byFormat := map[string][]string{}
	for _, k := range all {
		format, _, _, ok := quantFormat(k)
		if !ok {
			t.Fatalf("kernel %s of %s has no quantized format in its name", k, quantizedFile)
		}
		byFormat[format] = append(byFormat[format], k)
	}
	if len(byFormat) != 36 {
		t.Errorf("%d formats in %s, want 36 (6 bit widths, 3 group sizes, 2 scale types)", len(byFormat), quantizedFile)
	}
	for format, want := range byFormat {
		_, _, defines, _ := quantFormat(want[0])
		if got := kernelsOf(defines + src); !slices.Equal(got, want) {
			t.Errorf("%s alone: kernels %v, want %v", format, got, want)
		}
	}
	if _, _, _, ok := quantFormat("rmsnorm"); ok {
		t.Error("quantFormat(rmsnorm) is a quantized format")
	}
}
