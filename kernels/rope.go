package kernels

import "math"

// RopeParams describe rotary position embedding for heads of HeadDim values
// whose first RotaryDim values are rotated.
type RopeParams struct {
	RotaryDim int
	// InvFreq has RotaryDim/2 entries (see RopeInvFreq).
	InvFreq []float32
	// Scale multiplies cos and sin (YaRN's attention factor; 1 otherwise).
	Scale float32
	// Interleaved rotates pairs (2i, 2i+1) instead of (i, i+RotaryDim/2).
	Interleaved bool
}

// YaRN holds the rope_scaling fields YaRN needs.
type YaRN struct {
	Factor, BetaFast, BetaSlow, MScale, MScaleAllDim float64
	OriginalMaxPositions                             int
	// NoTruncate keeps the correction range's fractional bounds
	// (rope_scaling "truncate": false, gpt-oss) instead of flooring and
	// ceiling them.
	NoTruncate bool
}

// YaRNMScale is YaRN's magnitude correction 0.1*m*ln(s)+1 (1 for s <= 1).
func YaRNMScale(scale, m float64) float64 {
	if scale <= 1 {
		return 1
	}
	return 0.1*m*math.Log(scale) + 1
}

// RopeInvFreq returns the rotary frequencies for dim rotated values with the
// given base, optionally with YaRN scaling, and the factor cos/sin are
// multiplied by.
func RopeInvFreq(dim int, base float64, yarn *YaRN) ([]float32, float32) {
	half := dim / 2
	inv := make([]float32, half)
	for i := range inv {
		inv[i] = float32(1 / math.Pow(base, float64(2*i)/float64(dim)))
	}
	if yarn == nil {
		return inv, 1
	}
	betaFast, betaSlow := yarn.BetaFast, yarn.BetaSlow
	if betaFast == 0 {
		betaFast = 32
	}
	if betaSlow == 0 {
		betaSlow = 1
	}
	corr := func(rot float64) float64 {
		return float64(dim) * math.Log(float64(yarn.OriginalMaxPositions)/(rot*2*math.Pi)) / (2 * math.Log(base))
	}
	low, high := corr(betaFast), corr(betaSlow)
	if !yarn.NoTruncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = math.Max(low, 0), math.Min(high, float64(dim-1))
	if low == high {
		high += 0.001
	}
	for i := range inv {
		ramp := math.Min(math.Max((float64(i)-low)/(high-low), 0), 1)
		extrap := 1 - ramp
		pos := math.Pow(base, float64(2*i)/float64(dim))
		inv[i] = float32((1/(yarn.Factor*pos))*(1-extrap) + (1/pos)*extrap)
	}
	factor := YaRNMScale(yarn.Factor, 1)
	if yarn.MScale != 0 && yarn.MScaleAllDim != 0 {
		factor = YaRNMScale(yarn.Factor, yarn.MScale) / YaRNMScale(yarn.Factor, yarn.MScaleAllDim)
	}
	return inv, float32(factor)
}

// Rope rotates x, laid out [n, heads, headDim], in place; token t is at
// position pos[t].
func Rope(x []float32, pos []int32, n, heads, headDim int, p *RopeParams) {
	half := p.RotaryDim / 2
	// A token's cos and sin tables live on the stack for the usual head
	// sizes (a rotary dim up to 512), so a decode step allocates nothing.
	var cosBuf, sinBuf [256]float32
	cos, sin := cosBuf[:0], sinBuf[:0]
	if half > len(cosBuf) {
		cos, sin = make([]float32, 0, half), make([]float32, 0, half)
	}
	cos, sin = cos[:half], sin[:half]
	for t := 0; t < n; t++ {
		for i := 0; i < half; i++ {
			a := float64(pos[t]) * float64(p.InvFreq[i])
			cos[i] = float32(math.Cos(a)) * p.Scale
			sin[i] = float32(math.Sin(a)) * p.Scale
		}
		for h := 0; h < heads; h++ {
			v := x[(t*heads+h)*headDim:]
			for i := 0; i < half; i++ {
				a, b := i, i+half
				if p.Interleaved {
					a, b = 2*i, 2*i+1
				}
				x1, x2 := v[a], v[b]
				v[a] = x1*cos[i] - x2*sin[i]
				v[b] = x2*cos[i] + x1*sin[i]
			}
		}
	}
}
