package constrain

// A generation has a token budget (max_tokens). An output cut off by it is
// not valid JSON, and a model that never stops on its own (or a recursive
// schema) would run into it. So near the end of the budget the mask also
// forbids tokens after which the shortest completion no longer fits: each
// remaining token writes at least one byte, so a state whose shortest
// completion is at most the number of tokens left can always be finished
// (byte-level vocabularies have a token for every byte).

const unreachable = 1 << 30

// shortest computes shortest completions from node.short, each node's
// shortest complete text in bytes.
type shortest struct{}

// computeShortest sets the shortest text of every node reachable from
// root, iterating to a fixed point because $ref may make the graph cyclic.
func computeShortest(root *node) {
	var all []*node
	seen := map[*node]bool{}
	var visit func(n *node)
	visit = func(n *node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		all = append(all, n)
		for _, a := range n.alts {
			visit(a)
		}
		for _, p := range n.parts {
			visit(p)
		}
		for _, p := range n.props {
			visit(p.val)
		}
		visit(n.extra)
		visit(n.keys)
		visit(n.items)
	}
	visit(root)
	var s shortest
	for _, n := range all {
		n.short = unreachable
	}
	for changed := true; changed; {
		changed = false
		for _, n := range all {
			if v := s.full(n); v < n.short {
				n.short, changed = v, true
			}
		}
	}
}

func add(a, b int) int { return min(a+b, unreachable) }

// full is the shortest text of n from the current table.
func (s shortest) full(n *node) int {
	switch n.kind {
	case kLiteral:
		return len(n.lit)
	case kString:
		quotes := 2
		if n.raw {
			quotes = 0
		}
		if n.format != nil {
			return quotes + len(n.format)
		}
		return quotes + n.minLen
	case kNumber:
		return 1
	case kAnyOf:
		best := unreachable
		for _, a := range n.alts {
			best = min(best, a.short)
		}
		return best
	case kSeq:
		t := 0
		for _, p := range n.parts {
			t = add(t, p.short)
		}
		return t
	case kObject:
		return add(1, s.objectRest(n, 0, true))
	case kArray:
		return add(1, s.arrayRest(n, 0))
	}
	return unreachable
}

// propCost is one property written: key, ':' and the shortest value.
func (s shortest) propCost(p prop) int { return add(len(p.key)+1, p.val.short) }

// objectRest is the shortest way to finish a declared object from
// property i on, '}' included; first says no property was written yet (no
// comma before the next).
func (s shortest) objectRest(n *node, i int, first bool) int {
	if n.free {
		return 1
	}
	t := 1
	for _, p := range n.props[i:] {
		if p.required {
			t = add(t, s.propCost(p))
			if !first {
				t = add(t, 1)
			}
			first = false
		}
	}
	return t
}

// arrayRest is the shortest way to finish an array holding i items, ']'
// included.
func (s shortest) arrayRest(n *node, i int) int {
	t := 1
	for k := i; k < n.minItems; k++ {
		t = add(t, n.items.short)
		if k > 0 {
			t = add(t, 1)
		}
	}
	return t
}

// frameRest is the shortest way to finish frame f's own value (for a frame
// with a child above it: what follows once the child is complete).
func (s shortest) frameRest(f *frame) int {
	n := f.n
	switch n.kind {
	case kLiteral:
		return len(n.lit) - int(f.i)
	case kString:
		if f.st == 0 {
			return n.short
		}
		pending := 0
		switch {
		case f.aux == -1:
			pending = 1
		case f.aux < -1:
			pending = int(-1 - f.aux)
		case f.aux > 0:
			pending = int(f.aux >> 16)
		}
		quote := 1
		if n.raw {
			quote = 0
		}
		if n.format != nil {
			return pending + len(n.format) - int(f.i) + quote
		}
		return pending + max(0, n.minLen-int(f.i)) + quote
	case kNumber:
		if numberAccepting(f) {
			return 0
		}
		return 1
	case kSeq:
		t := 0
		for _, p := range n.parts[f.i+1:] {
			t = add(t, p.short)
		}
		return t
	case kObject:
		return s.objectFrameRest(f)
	case kArray:
		switch f.st {
		case stOpen:
			return n.short
		case stChild:
			return s.arrayRest(n, int(f.i)+1)
		case stComma:
			return add(n.items.short, s.arrayRest(n, int(f.i)+1))
		}
		return s.arrayRest(n, int(f.i))
	}
	return unreachable
}

func (s shortest) objectFrameRest(f *frame) int {
	n := f.n
	if n.free {
		entry := add(3, n.extra.short) // "":value
		switch f.st {
		case stOpen:
			return n.short
		case stComma:
			return add(entry, 1)
		case stColon:
			return add(1+n.extra.short, 1)
		case stFreeKey:
			return add(1+n.extra.short, 1)
		}
		return 1
	}
	switch f.st {
	case stOpen:
		return n.short
	case stFirst:
		return s.objectRest(n, int(f.i), true)
	case stNext:
		return s.objectRest(n, int(f.i), false)
	case stComma:
		// One more property must follow: the next required one, or any
		// optional one before it.
		best := unreachable
		for j := int(f.i); j < len(n.props); j++ {
			p := n.props[j]
			best = min(best, add(s.propCost(p), s.objectRest(n, j+1, false)))
			if p.required {
				break
			}
		}
		return best
	case stKey:
		p := n.props[f.aux]
		return add(len(p.key)-int(f.k)+1+p.val.short, s.objectRest(n, int(f.aux)+1, false))
	case stColon:
		return add(1+n.props[f.aux].val.short, s.objectRest(n, int(f.aux)+1, false))
	case stChild:
		return s.objectRest(n, int(f.aux)+1, false)
	}
	return unreachable
}

// threadRest is the shortest way to finish the whole output from thread t.
func (s shortest) threadRest(t *frame) int {
	total := 0
	for f := t; f != nil; f = f.up {
		if f == done {
			return total
		}
		total = add(total, s.frameRest(f))
	}
	return total
}

// statesRest is the shortest completion over threads.
func (s shortest) statesRest(ts []*frame) int {
	best := unreachable
	for _, t := range ts {
		best = min(best, s.threadRest(t))
	}
	return best
}
