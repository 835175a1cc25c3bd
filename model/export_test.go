package model

// LogProb is logProb for the external tests.
var LogProb = logProb

// OneSegmentMixers makes every layer of m run its mixer the way mix runs a
// mixer of the one-segment shape (once per segment), for the tests of that
// path: the wrapper hides forwardSegments.
func OneSegmentMixers(m *Model) {
	for _, l := range m.Layers {
		l.Mixer = oneSegmentMixer{l.Mixer}
	}
}

type oneSegmentMixer struct{ Mixer }
