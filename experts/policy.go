package experts

import (
	"fmt"
	"strings"
)

// Policy says what happens when a routed expert is not resident.
type Policy int

const (
	// Exact loads every missing expert before the layer's experts run, so the
	// output is identical to a fully resident model.
	Exact Policy = iota
	// Fast runs without the missing experts (the engine renormalises the
	// remaining routing weights) and loads them in the background for later
	// tokens.
	Fast
	// OS uses no pager: the engine memory-maps the expert tensors (MapFile)
	// and the kernel's page cache decides what stays in memory.
	OS
)

func (p Policy) String() string {
	switch p {
	case Exact:
		return "exact"
	case Fast:
		return "fast"
	case OS:
		return "os"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses the --policy flag: exact, fast or os.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "exact", "":
		return Exact, nil
	case "fast":
		return Fast, nil
	case "os":
		return OS, nil
	}
	return 0, fmt.Errorf("experts: unknown policy %q (want exact, fast or os)", s)
}
