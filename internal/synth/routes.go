package synth

import "fmt"

// RouteShares returns the share of a layer's routes that each expert
// gets, by popularity rank (most used first), in the checkpoints Write
// writes: layer l of layers MoE layers with n experts each. A replay of
// decode routes for IO measurements (scripts/scale) draws from it.
func RouteShares(l, layers, n int) ([]float64, error) {
	if l < 0 || l >= layers || n <= 0 {
		return nil, fmt.Errorf("synth: route shares of layer %d of %d with %d experts", l, layers, n)
	}
	counts, err := trainedCounts()
	if err != nil {
		return nil, err
	}
	return popularityCurve(counts[l*len(counts)/layers], n), nil
}
