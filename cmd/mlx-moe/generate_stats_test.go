package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestGenerateJSONStats: generate --json reports the speeds and what the
// pager read, with the capacity small enough that experts miss.
func TestGenerateJSONStats(t *testing.T) {
	var out, errOut strings.Builder
	args := []string{"generate", "--prompt-ids", "1,2,3", "--max-tokens", "6", "--ignore-eos", "--json", "--policy", "exact", "--capacity", "8", "--no-warm-start"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("generate exited %d: %s", code, errOut.String())
	}
	var got struct {
		IDs   []int32            `json:"ids"`
		Stats map[string]float64 `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"prefill_tok_s", "decode_tok_s", "ttft_s", "hit_rate", "read_bytes", "read_gbps", "io_wait_s", "peak_rss_bytes", "decode_hit_rate", "decode_read_bytes", "decode_io_wait_s"} {
		if _, ok := got.Stats[k]; !ok {
			t.Errorf("stats lacks %q: %v", k, got.Stats)
		}
	}
	s := got.Stats
	if len(got.IDs) != 6 || s["decode_tok_s"] <= 0 || s["ttft_s"] <= 0 || s["read_bytes"] <= 0 || s["read_gbps"] <= 0 {
		t.Errorf("%d tokens, stats %v", len(got.IDs), s)
	}
	if h := s["hit_rate"]; h <= 0 || h >= 1 {
		t.Errorf("hit rate %v with 8 of 64 slots, want in (0, 1)", h)
	}
	if runtime.GOOS == "linux" && s["peak_rss_bytes"] < 1<<20 {
		t.Errorf("peak RSS %v bytes", s["peak_rss_bytes"])
	}
}
