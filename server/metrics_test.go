package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// batching is a fake backend that reports scheduler figures.
type batching struct {
	*servertest.Backend
	stats server.BatchStats
}

func (b *batching) BatchStats() server.BatchStats { return b.stats }

// /metrics has the queue wait, batch wait and per-sequence speed
// histograms after a generation, and a batching backend's running and
// waiting sequences, aggregate speed and batch size histogram (cumulative
// buckets, sum and count).
func TestBatchMetrics(t *testing.T) {
	f := fake("qwen3")
	f.TokenDelay = time.Millisecond
	b := &batching{Backend: f, stats: server.BatchStats{Running: 3, Waiting: 1, BatchBuckets: []int{1, 2, 4},
		Batch: []int64{5, 2, 7, 1}, BatchSum: 5 + 4 + 25 + 6, TokensPerSecond: 42.5}}
	ts := start(t, b, server.Config{Parallel: 2})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	m, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{
		"mlxmoe_running_sequences 0",
		"mlxmoe_batch_running_sequences 3",
		"mlxmoe_batch_waiting_sequences 1",
		"mlxmoe_aggregate_decode_tokens_per_second 42.5",
		"# TYPE mlxmoe_batch_size histogram",
		`mlxmoe_batch_size_bucket{le="1"} 5`,
		`mlxmoe_batch_size_bucket{le="2"} 7`,
		`mlxmoe_batch_size_bucket{le="4"} 14`,
		`mlxmoe_batch_size_bucket{le="+Inf"} 15`,
		"mlxmoe_batch_size_sum 40",
		"mlxmoe_batch_size_count 15",
		"# TYPE mlxmoe_queue_wait_seconds histogram",
		"mlxmoe_queue_wait_seconds_count 1",
		"mlxmoe_batch_wait_seconds_count 1",
		"mlxmoe_sequence_decode_tokens_per_second_count 1",
	} {
		if !strings.Contains(string(text), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}
