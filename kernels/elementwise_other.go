//go:build purego || !amd64

package kernels

// ExpVec writes e^x[i] to out[i]; out may alias x.
func ExpVec(out, x []float32) { expVecGo(out, x) }

// SigmoidVec writes 1/(1+e^-x[i]) to out[i]; out may alias x.
func SigmoidVec(out, x []float32) { sigmoidVecGo(out, x) }

// SiluVec writes x[i]·sigmoid(x[i]) to out[i]; out may alias x.
func SiluVec(out, x []float32) { siluVecGo(out, x) }

// SwiGLU computes out = silu(gate) * up element-wise; out may alias either.
func SwiGLU(out, gate, up []float32) { swigluGo(out, gate, up) }

// sumSquares is Σ x[i]².
func sumSquares(x []float32) float32 { return sumSquaresGo(x) }

// scaleMul writes x[i]·s·w[i] to out[i].
func scaleMul(out, x, w []float32, s float32) { scaleMulGo(out, x, w, s) }

// mulAdd adds a[i]·b[i] to out[i].
func mulAdd(out, a, b []float32) { mulAddGo(out, a, b) }

// AddScaled computes out += s * x element-wise.
func AddScaled(out, x []float32, s float32) { addScaledGo(out, x, s) }

// Add computes out = a + b element-wise.
func Add(out, a, b []float32) { addGo(out, a, b) }

// scale multiplies x by s in place.
func scale(x []float32, s float32) { scaleGo(x, s) }
