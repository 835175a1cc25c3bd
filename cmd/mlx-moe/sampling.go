package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mlx-moe/mlx-moe/sample"
)

// samplingFlags are generate's sampling flags. They take the ranges the
// server accepts for the same request fields.
type samplingFlags struct {
	opts sample.Options
	seed uint64
	fs   *flag.FlagSet
}

func (f *samplingFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.Float64Var(&f.opts.Temperature, "temperature", 0, "sampling temperature, 0 to 2 (0: greedy)")
	fs.Float64Var(&f.opts.TopP, "top-p", 1, "nucleus sampling: keep tokens up to this cumulative probability, 0 to 1")
	fs.IntVar(&f.opts.TopK, "top-k", 0, "keep only the k most likely tokens (0: all)")
	fs.Float64Var(&f.opts.MinP, "min-p", 0, "drop tokens less likely than this fraction of the most likely, 0 to 1")
	fs.Float64Var(&f.opts.RepetitionPenalty, "repetition-penalty", 1, "divide the logits of tokens already seen by this, above 0 (1: off)")
	fs.Uint64Var(&f.seed, "seed", 0, "random seed for sampling, to repeat a run (default: a fresh one each run, shown by --verbose)")
}

// options checks the flags and returns the sampling options; without
// --seed a random sample gets a fresh seed, so runs differ.
func (f *samplingFlags) options() (sample.Options, error) {
	o := f.opts
	for _, r := range []struct {
		name   string
		v      float64
		lo, hi float64
	}{
		{"--temperature", o.Temperature, 0, 2},
		{"--top-p", o.TopP, 0, 1},
		{"--min-p", o.MinP, 0, 1},
	} {
		if math.IsNaN(r.v) || r.v < r.lo || r.v > r.hi {
			return o, fmt.Errorf("%s %g: expected a number from %g to %g", r.name, r.v, r.lo, r.hi)
		}
	}
	if p := o.RepetitionPenalty; math.IsNaN(p) || math.IsInf(p, 0) || p <= 0 {
		return o, fmt.Errorf("--repetition-penalty %g: expected a positive number (1: off)", p)
	}
	if o.TopK < 0 {
		return o, fmt.Errorf("--top-k %d: expected 0 (off) or a positive number of tokens", o.TopK)
	}
	o.Seed = f.seed
	if o.Temperature > 0 && !f.seedGiven() {
		o.Seed = rand.Uint64()
	}
	return o, nil
}

func (f *samplingFlags) seedGiven() bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "seed" })
	return given
}
