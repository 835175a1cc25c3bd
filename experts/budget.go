package experts

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// ParseBytes parses a memory size such as "12GB", "12G", "512MiB", "1.5 GB"
// or "4096". KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB and the bare
// K/M/G/T are powers of 1024; a plain number is bytes.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || v < 0 {
		return 0, fmt.Errorf("experts: memory size %q: want a number and a unit, like 12GB or 512MiB", s)
	}
	mult, ok := byteUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("experts: memory size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, unit)
	}
	b := v * mult
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("experts: memory size %q is too large", s)
	}
	return int64(b), nil
}

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// FormatBytes prints a byte count in GB/MB (powers of 1000), as ParseBytes reads them.
func FormatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d B", n)
}

// AutoBudget returns the memory the engine may use when --memory is not
// given: the memory available now less a reserve for the OS and other
// programs (15% of it, at least 1.5 GiB), and a sentence saying so.
func AutoBudget() (int64, string, error) {
	avail, source, err := availableMemory()
	if err != nil {
		return 0, "", fmt.Errorf("experts: cannot size the memory budget automatically (%w); pass --memory", err)
	}
	reserve := max(avail*15/100, 3<<29)
	if avail <= reserve {
		return 0, "", fmt.Errorf("experts: only %s of memory available (%s); pass --memory", FormatBytes(avail), source)
	}
	return avail - reserve, fmt.Sprintf("automatic: %s available (%s) less %s for the OS", FormatBytes(avail), source, FormatBytes(reserve)), nil
}

// PlanInput is what the engine knows about a model when it sizes the pager.
type PlanInput struct {
	// Memory is the budget in bytes (--memory); 0 means AutoBudget.
	Memory int64
	// Capacity, if > 0, is the explicit number of slots per layer (--capacity).
	Capacity int
	// Resident is the bytes of the weights that stay in memory: attention,
	// shared experts, routers, embeddings, norms.
	Resident int64
	// KVCache is the bytes of the KV cache and recurrent state.
	KVCache int64
	// Scratch is the bytes of activations and other working buffers.
	Scratch int64
	// MoELayers is the number of layers with routed experts, Experts the
	// experts of each, TopK the experts a token routes to.
	MoELayers, Experts, TopK int
	// SlotBytes is the memory of one expert slot (LayerLayout.SlotStride).
	SlotBytes int64
	// Pin is the number of experts per layer to pin (--pin).
	Pin int
	// Profile, if known, gives the expected hit rate.
	Profile *Profile
}

// Plan is the memory plan printed at start.
type Plan struct {
	PlanInput
	Budget       int64
	BudgetSource string
	// Capacity is the number of slots per MoE layer.
	Capacity int
	// ExpertMemory is MoELayers * Capacity * SlotBytes.
	ExpertMemory int64
	// ExpectedHitRate is the profile's share of routes to the Capacity most
	// used experts of each layer (averaged over layers), or -1 without a profile.
	ExpectedHitRate float64
	// Note warns about an explicit capacity beyond the budget.
	Note string
}

// NewPlan computes the capacity per layer: (budget - resident - KV cache -
// scratch) / (MoE layers * bytes per slot), at most the number of experts,
// unless in.Capacity sets it. It fails when fewer than TopK experts per
// layer fit, since a single token could then not run exactly.
func NewPlan(in PlanInput) (Plan, error) {
	if in.MoELayers <= 0 || in.Experts <= 0 || in.SlotBytes <= 0 || in.TopK <= 0 {
		return Plan{}, fmt.Errorf("experts: plan needs MoE layers, experts, top-k and slot bytes (got %d, %d, %d, %d)", in.MoELayers, in.Experts, in.TopK, in.SlotBytes)
	}
	p := Plan{PlanInput: in, Budget: in.Memory, BudgetSource: "--memory", ExpectedHitRate: -1}
	if p.Budget <= 0 {
		var err error
		if p.Budget, p.BudgetSource, err = AutoBudget(); err != nil {
			return Plan{}, err
		}
	}
	fixed := in.Resident + in.KVCache + in.Scratch
	perSlot := int64(in.MoELayers) * in.SlotBytes
	free := p.Budget - fixed
	fits := 0
	if free > 0 {
		fits = int(min(free/perSlot, int64(in.Experts)))
	}
	if in.Capacity > 0 {
		p.Capacity = min(in.Capacity, in.Experts)
		if p.Capacity > fits {
			p.Note = fmt.Sprintf("--capacity %d needs %s, beyond the budget of %s", p.Capacity, FormatBytes(fixed+int64(p.Capacity)*perSlot), FormatBytes(p.Budget))
		}
	} else {
		p.Capacity = fits
	}
	if p.Capacity < in.TopK {
		return Plan{}, fmt.Errorf("experts: a budget of %s (%s) leaves room for %d experts per layer after %s of resident weights, KV cache and scratch; a token routes to %d, so at least %s is needed",
			FormatBytes(p.Budget), p.BudgetSource, p.Capacity, FormatBytes(fixed), in.TopK, FormatBytes(fixed+int64(in.TopK)*perSlot))
	}
	if in.Pin > p.Capacity-in.TopK {
		return Plan{}, fmt.Errorf("experts: --pin %d leaves fewer than top-k=%d of %d slots per layer for routed experts (at most --pin %d)", in.Pin, in.TopK, p.Capacity, p.Capacity-in.TopK)
	}
	p.ExpertMemory = int64(p.Capacity) * perSlot
	if in.Profile != nil {
		p.ExpectedHitRate = in.Profile.HitRate(p.Capacity)
	}
	return p, nil
}

func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "memory plan: budget %s (%s)\n", FormatBytes(p.Budget), p.BudgetSource)
	fmt.Fprintf(&b, "  resident weights  %s\n", FormatBytes(p.Resident))
	fmt.Fprintf(&b, "  KV cache, state   %s\n", FormatBytes(p.KVCache))
	fmt.Fprintf(&b, "  scratch           %s\n", FormatBytes(p.Scratch))
	fmt.Fprintf(&b, "  experts           %s = %d layers x %d slots x %s (%d of %d experts per layer, %.1f%%)\n",
		FormatBytes(p.ExpertMemory), p.MoELayers, p.Capacity, FormatBytes(p.SlotBytes), p.Capacity, p.Experts, 100*float64(p.Capacity)/float64(p.Experts))
	if p.Pin > 0 {
		fmt.Fprintf(&b, "  pinned            %d experts per layer\n", p.Pin)
	}
	if p.ExpectedHitRate >= 0 {
		fmt.Fprintf(&b, "  expected hit rate %.1f%% (profile %s, %d tokens)\n", 100*p.ExpectedHitRate, p.Profile.Model, p.Profile.Tokens)
	} else {
		b.WriteString("  expected hit rate unknown (no profile)\n")
	}
	if p.Capacity == p.Experts {
		b.WriteString("  every expert fits: nothing is paged after the first use\n")
	}
	if p.Note != "" {
		fmt.Fprintf(&b, "  note: %s\n", p.Note)
	}
	return b.String()
}
