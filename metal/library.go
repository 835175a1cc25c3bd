package metal

import (
	"fmt"
	"regexp"
)

// quantizedFile is the shader file of the quantized kernels: 8 kernels for
// each of 36 formats (bits, group size, scale type), too many to compile
// at every start when a model uses one or two formats. The executor
// compiles it per format on first use (quantFormat); the other files are
// small and compiled whole.
const quantizedFile = "quantized.metal"

var quantNameRE = regexp.MustCompile(`_b([2-8])_g(32|64|128)_(bf16|f16)$`)

// quantFormat returns, for a quantized kernel's name ("qmv_b4_g64_bf16"),
// its format ("b4_g64_bf16"), whether its scales are bfloat, and the
// defines that make quantized.metal instantiate only that format's
// kernels. ok is false for other kernels.
func quantFormat(kernel string) (format string, bf16 bool, defines string, ok bool) {
	m := quantNameRE.FindStringSubmatch(kernel)
	if m == nil {
		return "", false, "", false
	}
	scales := "half"
	if m[3] == "bf16" {
		scales = "bfloat"
	}
	defines = fmt.Sprintf("#define MSL_QUANT_BITS %s\n#define MSL_QUANT_GROUP %s\n#define MSL_QUANT_SCALES %s\n", m[1], m[2], scales)
	return m[0][1:], m[3] == "bf16", defines, true
}
