package model

// LogProb is logProb for the external tests.
var LogProb = logProb
