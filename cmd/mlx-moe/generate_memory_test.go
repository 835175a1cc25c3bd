package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

var memoryLine = regexp.MustCompile(`memory: ([0-9.]+) MB: dense weights ([0-9.]+) MB, expert slots ([0-9.]+) MB, caches and activations ([0-9.]+) MB, scratch ([0-9.]+) MB`)

// TestGenerateVerboseMemory: generate --verbose prints the memory the model
// holds by part, the parts add up to the total, and paging shows its slots.
func TestGenerateVerboseMemory(t *testing.T) {
	withCache(t)
	var out, errOut strings.Builder
	args := []string{"generate", "--model", fixture.Dir(t, "fixtures/qwen3_moe-4bit"), "--prompt-ids", "1,2,3", "--max-tokens", "3",
		"--policy", "exact", "--capacity", "8", "--no-warm-start", "--verbose"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("generate exited %d: %s", code, errOut.String())
	}
	m := memoryLine.FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("--verbose printed no memory line:\n%s", errOut.String())
	}
	var mb [5]float64
	for i := range mb {
		var err error
		if mb[i], err = strconv.ParseFloat(m[i+1], 64); err != nil {
			t.Fatal(err)
		}
	}
	if sum := mb[1] + mb[2] + mb[3] + mb[4]; sum < mb[0]-0.25 || sum > mb[0]+0.25 {
		t.Errorf("the parts add up to %.1f MB, the total is %.1f MB: %s", sum, mb[0], m[0])
	}
	if mb[1] <= 0 || mb[2] <= 0 || mb[3] <= 0 {
		t.Errorf("weights, expert slots and caches must each be counted with paging on: %s", m[0])
	}
}
