package server

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// metrics are the server's counters, written as Prometheus text.
type metrics struct {
	mu        sync.Mutex
	requests  map[[2]string]int64 // endpoint, status code
	prompt    int64
	cached    int64
	generated int64
	prefillS  float64
	decodeS   float64
	prefilled int64 // prompt tokens actually prefilled (prompt - cached)
	lastPre   float64
	lastDec   float64
	cancelled int64
	cacheHits int64 // generations that reused cached prompt tokens
	// queueWait: time from arrival to a generation slot; engineWait: time
	// the backend then held the request before it began; seqRate: decode
	// tokens per second of each generation.
	queueWait, engineWait, seqRate histogram
}

func newMetrics() *metrics {
	waits := []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}
	return &metrics{requests: map[[2]string]int64{},
		queueWait:  newHistogram(waits),
		engineWait: newHistogram(waits),
		seqRate:    newHistogram([]float64{1, 2, 5, 10, 20, 50, 100, 200, 500}),
	}
}

// queued observes a request's wait for a generation slot.
func (m *metrics) queued(d time.Duration) {
	m.mu.Lock()
	m.queueWait.observe(d.Seconds())
	m.mu.Unlock()
}

// histogram is a Prometheus histogram: counts per upper bound (the last
// one +Inf), their sum and total.
type histogram struct {
	bounds []float64
	counts []int64
	sum    float64
	n      int64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]int64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
	h.n++
}

// write renders h as cumulative buckets.
func (h *histogram) write(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum int64
	for i, c := range h.counts {
		cum += c
		le := "+Inf"
		if i < len(h.bounds) {
			le = fmt.Sprint(h.bounds[i])
		}
		fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", name, le, cum)
	}
	fmt.Fprintf(w, "%s_sum %g\n%s_count %d\n", name, h.sum, name, h.n)
}

func (m *metrics) request(endpoint string, status int) {
	m.mu.Lock()
	m.requests[[2]string{endpoint, fmt.Sprint(status)}]++
	m.mu.Unlock()
}

func (m *metrics) generation(r GenResult, cancelled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prompt += int64(r.PromptTokens)
	m.cached += int64(r.CachedTokens)
	m.prefilled += int64(r.PromptTokens - r.CachedTokens)
	m.generated += int64(r.CompletionTokens)
	m.prefillS += r.PrefillTime.Seconds()
	m.decodeS += r.DecodeTime.Seconds()
	if s := r.PrefillTime.Seconds(); s > 0 {
		m.lastPre = float64(r.PromptTokens-r.CachedTokens) / s
	}
	if s := r.DecodeTime.Seconds(); s > 0 {
		m.lastDec = float64(r.CompletionTokens) / s
	}
	if cancelled {
		m.cancelled++
	}
	if r.CachedTokens > 0 {
		m.cacheHits++
	}
	m.engineWait.observe(r.QueueTime.Seconds())
	if s := r.DecodeTime.Seconds(); s > 0 && r.CompletionTokens > 1 {
		m.seqRate.observe(float64(r.CompletionTokens-1) / s)
	}
}

// write renders the metrics, the queue state, the backend's stats and,
// for a batching backend, its scheduler's (batch may be nil).
func (m *metrics) write(w io.Writer, waiting, running int, stats map[string]float64, batch *BatchStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	metric := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("mlxmoe_requests_total", "counter", "HTTP requests by endpoint and status code.")
	keys := slices.SortedFunc(maps.Keys(m.requests), func(a, b [2]string) int {
		return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1])
	})
	for _, k := range keys {
		fmt.Fprintf(w, "mlxmoe_requests_total{endpoint=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	counters := []struct {
		name, help string
		v          float64
	}{
		{"mlxmoe_prompt_tokens_total", "Prompt tokens of finished generations.", float64(m.prompt)},
		{"mlxmoe_prompt_tokens_cached_total", "Prompt tokens reused from the prefix cache.", float64(m.cached)},
		{"mlxmoe_prefill_tokens_total", "Prompt tokens prefilled (not cached).", float64(m.prefilled)},
		{"mlxmoe_completion_tokens_total", "Generated tokens.", float64(m.generated)},
		{"mlxmoe_prefill_seconds_total", "Time spent in prefill.", m.prefillS},
		{"mlxmoe_decode_seconds_total", "Time spent decoding.", m.decodeS},
		{"mlxmoe_generations_cancelled_total", "Generations stopped by a client disconnect.", float64(m.cancelled)},
		{"mlxmoe_prompt_cache_hits_total", "Generations whose prompt reused cached tokens.", float64(m.cacheHits)},
	}
	for _, c := range counters {
		metric(c.name, "counter", c.help)
		fmt.Fprintf(w, "%s %g\n", c.name, c.v)
	}
	gauges := []struct {
		name, help string
		v          float64
	}{
		{"mlxmoe_prefill_tokens_per_second", "Prefill speed of the last generation.", m.lastPre},
		{"mlxmoe_decode_tokens_per_second", "Decode speed of the last generation.", m.lastDec},
		{"mlxmoe_queue_waiting", "Requests waiting for a generation slot.", float64(waiting)},
		{"mlxmoe_generating", "1 while a generation runs.", b2f(running > 0)},
		{"mlxmoe_running_sequences", "Generations running (in the backend's batch or waiting there for a place).", float64(running)},
		{"go_goroutines", "Goroutines in the process (for leak checks).", float64(runtime.NumGoroutine())},
	}
	for _, g := range gauges {
		metric(g.name, "gauge", g.help)
		fmt.Fprintf(w, "%s %g\n", g.name, g.v)
	}
	m.queueWait.write(w, "mlxmoe_queue_wait_seconds", "Time requests waited for a generation slot.")
	m.engineWait.write(w, "mlxmoe_batch_wait_seconds", "Time generations waited in the backend for a place in its batch.")
	m.seqRate.write(w, "mlxmoe_sequence_decode_tokens_per_second", "Decode speed of each generation.")
	if batch != nil {
		writeBatch(w, batch, metric)
	}
	for _, k := range slices.Sorted(maps.Keys(stats)) {
		name := "mlxmoe_" + metricName(k)
		typ := "gauge"
		if strings.HasSuffix(name, "_total") {
			typ = "counter"
		}
		metric(name, typ, "Engine statistic "+k+".")
		fmt.Fprintf(w, "%s %g\n", name, stats[k])
	}
}

// writeBatch renders a batching backend's scheduler figures.
func writeBatch(w io.Writer, b *BatchStats, metric func(name, typ, help string)) {
	for _, g := range []struct {
		name, help string
		v          float64
	}{
		{"mlxmoe_batch_running_sequences", "Sequences in the backend's batch.", float64(b.Running)},
		{"mlxmoe_batch_waiting_sequences", "Sequences waiting for a place in the batch.", float64(b.Waiting)},
		{"mlxmoe_aggregate_decode_tokens_per_second", "Tokens generated per second by all sequences together, over the last seconds.", b.TokensPerSecond},
	} {
		metric(g.name, "gauge", g.help)
		fmt.Fprintf(w, "%s %g\n", g.name, g.v)
	}
	if len(b.Batch) != len(b.BatchBuckets)+1 {
		return
	}
	h := histogram{counts: b.Batch, sum: float64(b.BatchSum)}
	for _, c := range b.Batch {
		h.n += c
	}
	for _, v := range b.BatchBuckets {
		h.bounds = append(h.bounds, float64(v))
	}
	h.write(w, "mlxmoe_batch_size", "Forward passes by how many sequences they advanced.")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricName keeps [a-zA-Z0-9_] and turns anything else into '_'.
func metricName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}
