package experts

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// LayerStats counts what the pager did for one layer (or, in Stats.Total,
// for all of them; Layer is then -1).
type LayerStats struct {
	Layer    int
	Experts  int // experts of the layer
	Capacity int // slots
	Resident int // experts resident now
	Pinned   int

	Hits   int64 // routed experts found resident (distinct per Resolve call)
	Misses int64 // routed experts not resident
	Loads  int64 // experts read into slots: on demand, prefetched, filled
	Bytes  int64 // bytes of the loaded experts
	// Evictions counts resident experts whose slot was given to another.
	Evictions int64
	// Prefetched counts loads started by Prefetch.
	Prefetched int64
	// PrefetchHits counts routed experts whose load a Prefetch since the
	// layer's previous Resolve had started; PrefetchLate those of them still
	// loading when routed (counted in Misses too: Resolve waited).
	PrefetchHits, PrefetchLate int64
	// Repeats counts routed experts that the layer's previous Resolve
	// routed too (the overlap of adjacent tokens in decode).
	Repeats int64
	// Dropped counts misses the fast policy ran without.
	Dropped int64
	// AsyncDropped counts background loads not started because the queue or
	// the evictable slots were full.
	AsyncDropped int64
	// Failed counts loads that failed with a read error.
	Failed int64
	// ReadTime is the wall time callers of this layer spent in reads,
	// background loads included.
	ReadTime time.Duration
	// IOWait is the wall time Resolve calls of this layer waited for
	// reads: the time the forward pass stood still for the disk.
	IOWait time.Duration
}

// PrefetchPrecision is the fraction of prefetched experts that the next
// Resolve of their layer routed.
func (s LayerStats) PrefetchPrecision() float64 {
	if s.Prefetched == 0 {
		return 0
	}
	return float64(s.PrefetchHits) / float64(s.Prefetched)
}

// PrefetchRecall is the fraction of the experts that would have missed
// without prefetching that a prefetch had started loading.
func (s LayerStats) PrefetchRecall() float64 {
	unpredicted := s.Misses - s.PrefetchLate
	if s.PrefetchHits+unpredicted == 0 {
		return 0
	}
	return float64(s.PrefetchHits) / float64(s.PrefetchHits+unpredicted)
}

// HitRate is Hits / (Hits + Misses), or 0 before the first Resolve.
func (s LayerStats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

func (s *LayerStats) add(o LayerStats) {
	s.Experts += o.Experts
	s.Capacity += o.Capacity
	s.Resident += o.Resident
	s.Pinned += o.Pinned
	s.Hits += o.Hits
	s.Misses += o.Misses
	s.Loads += o.Loads
	s.Bytes += o.Bytes
	s.Evictions += o.Evictions
	s.Prefetched += o.Prefetched
	s.PrefetchHits += o.PrefetchHits
	s.PrefetchLate += o.PrefetchLate
	s.Repeats += o.Repeats
	s.Dropped += o.Dropped
	s.AsyncDropped += o.AsyncDropped
	s.Failed += o.Failed
	s.ReadTime += o.ReadTime
	s.IOWait += o.IOWait
}

// Since returns the counts of s that accumulated after the earlier snapshot
// o of the same layer (or of the totals): the counters' differences, with
// the sizes (Experts, Capacity, Resident, Pinned) of s.
func (s LayerStats) Since(o LayerStats) LayerStats {
	d := s
	d.Hits -= o.Hits
	d.Misses -= o.Misses
	d.Loads -= o.Loads
	d.Bytes -= o.Bytes
	d.Evictions -= o.Evictions
	d.Prefetched -= o.Prefetched
	d.PrefetchHits -= o.PrefetchHits
	d.PrefetchLate -= o.PrefetchLate
	d.Repeats -= o.Repeats
	d.Dropped -= o.Dropped
	d.AsyncDropped -= o.AsyncDropped
	d.Failed -= o.Failed
	d.ReadTime -= o.ReadTime
	d.IOWait -= o.IOWait
	return d
}

// Stats is a snapshot of the pager's counters, for --verbose and for the
// server's metrics.
type Stats struct {
	Policy Policy
	Layers []LayerStats // MoE layers only, in layer order
	Total  LayerStats
	// IOBusy is the wall time during which at least one read was in flight.
	IOBusy time.Duration
	// ReadGBps is Total.Bytes / IOBusy in GB/s (1e9 bytes).
	ReadGBps float64
	// InFlight is the mean number of reads in progress during IOBusy, and
	// MaxInFlight the most at once: a mean near 1 means the reads are
	// latency-bound, one at a time.
	InFlight    float64
	MaxInFlight int
	// ReadsTime is the time of every read summed (InFlight * IOBusy), for
	// the mean depth over an interval between two snapshots.
	ReadsTime time.Duration
	// DirectIO says whether reads bypass the page cache: "off", "on", or
	// why not for which file.
	DirectIO string
}

// Stats returns a snapshot of the counters.
func (p *Pager) Stats() Stats {
	s := Stats{Policy: p.cfg.Policy, Total: LayerStats{Layer: -1}}
	for _, ls := range p.layers {
		if ls == nil {
			continue
		}
		ls.mu.Lock()
		st := ls.stats
		for s, e := range ls.owner {
			if e >= 0 && ls.state[s] == slotResident {
				st.Resident++
			}
		}
		ls.mu.Unlock()
		s.Layers = append(s.Layers, st)
		s.Total.add(st)
	}
	io := p.io.counters()
	s.IOBusy, s.InFlight, s.MaxInFlight = io.busy, io.depth, io.maxDepth
	s.ReadsTime = time.Duration(io.depth * float64(io.busy))
	if s.IOBusy > 0 {
		s.ReadGBps = float64(s.Total.Bytes) / s.IOBusy.Seconds() / 1e9
	}
	s.DirectIO = "off"
	if p.cfg.DirectIO {
		s.DirectIO = "on"
		var notes []string
		for _, n := range p.fileNames() {
			if note := p.files[n].note(); note != "" {
				notes = append(notes, note)
			}
		}
		if len(notes) > 0 {
			s.DirectIO = strings.Join(notes, "; ")
		}
	}
	return s
}

// String prints a per-layer table and the totals.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "expert pager: policy %s, direct IO %s\n", s.Policy, s.DirectIO)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "layer\tslots\tresident\tpinned\thits\tmisses\thit rate\tloads\tGB read\tevictions\tprefetched\tdropped\tfailed\t")
	row := func(name string, l LayerStats) {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f%%\t%d\t%.3f\t%d\t%d\t%d\t%d\t\n", name, l.Capacity, l.Resident, l.Pinned,
			l.Hits, l.Misses, 100*l.HitRate(), l.Loads, float64(l.Bytes)/1e9, l.Evictions, l.Prefetched, l.Dropped, l.Failed)
	}
	for _, l := range s.Layers {
		row(fmt.Sprint(l.Layer), l)
	}
	row("total", s.Total)
	w.Flush()
	if t := s.Total; t.Prefetched > 0 {
		fmt.Fprintf(&b, "prefetch: %d started, precision %.1f%%, recall %.1f%% (%d still loading when routed)\n",
			t.Prefetched, 100*t.PrefetchPrecision(), 100*t.PrefetchRecall(), t.PrefetchLate)
	}
	if t := s.Total; t.Hits+t.Misses > 0 {
		fmt.Fprintf(&b, "routes repeated from the layer's previous call: %.1f%%\n", 100*float64(t.Repeats)/float64(t.Hits+t.Misses))
	}
	fmt.Fprintf(&b, "read %.3f GB in %.3f s of IO: %.2f GB/s, %.1f reads in flight on average (at most %d); Resolve waited %.3f s for reads\n",
		float64(s.Total.Bytes)/1e9, s.IOBusy.Seconds(), s.ReadGBps, s.InFlight, s.MaxInFlight, s.Total.IOWait.Seconds())
	return b.String()
}
