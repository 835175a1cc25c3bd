package constrain

// The matcher: a thread is a stack of frames (immutable, shared between
// threads and steps), one frame per value being written; a state is the
// set of live threads (several while anyOf branches, enum values or
// optional keys are undecided). feed advances a thread by one byte.

// frame is one value in progress. Its fields mean, by kind:
//
//	literal: i = bytes matched
//	string:  st 0 before the quote, 1 inside; i = characters; aux = escape
//	         (-1 after '\', -2..-5 hex digits) or UTF-8 continuation state
//	number:  aux = lexer state (see feedNumber); i = digits in this part
//	object:  st phase (see feedObject); i = next property index (declared)
//	         or entries written (free); aux = the property being written;
//	         k = bytes of its key matched
//	array:   st phase; i = items written
//	seq:     i = current part
type frame struct {
	n     *node
	up    *frame
	i     int32
	aux   int32
	k     int32
	st    uint8
	depth uint8
}

// done is the state after the whole value: only end of output may follow.
var done = &frame{}

// Object and array phases.
const (
	stOpen     = 0 // before '{' / '['
	stFirst    = 1 // after '{' / '[': first entry or close
	stNext     = 2 // after an entry: ',' or close
	stComma    = 3 // after ',': an entry
	stKey      = 4 // inside a declared key
	stColon    = 5 // after a key: ':'
	stChild    = 7 // a child value is being written above this frame
	stFreeKey  = 8 // a free key string is being written above this frame
	maxThreads = 256
)

type matcher struct {
	maxDepth int
	arena    *arena // nil: frames on the heap
}

// make places a new frame: in the arena during a trie walk, whose frames
// die with it, else on the heap.
func (m *matcher) make(f frame) *frame {
	if m.arena == nil {
		p := new(frame) // not &f: that would move every f to the heap
		*p = f
		return p
	}
	return m.arena.make(f)
}

// arena hands out frames from fixed chunks (so pointers stay valid) and is
// reset before each walk.
type arena struct {
	chunks [][]frame
	c, i   int
}

func (a *arena) make(f frame) *frame {
	if a.c == len(a.chunks) {
		a.chunks = append(a.chunks, make([]frame, 4096))
	}
	p := &a.chunks[a.c][a.i]
	*p = f
	if a.i++; a.i == len(a.chunks[a.c]) {
		a.c, a.i = a.c+1, 0
	}
	return p
}

func (a *arena) reset() { a.c, a.i = 0, 0 }

// start appends the frames that begin writing n above up.
func (m *matcher) start(n *node, up *frame, dst []*frame) []*frame {
	return m.startHops(n, up, dst, 0)
}

// startHops expands anyOf branches in place; hops bounds a $ref cycle that
// would expand forever without opening a value.
func (m *matcher) startHops(n *node, up *frame, dst []*frame, hops int) []*frame {
	depth := uint8(0)
	if up != nil {
		depth = up.depth
	}
	switch n.kind {
	case kAnyOf:
		if hops > 64 {
			return dst
		}
		for _, a := range n.alts {
			dst = m.startHops(a, up, dst, hops+1)
		}
		return dst
	case kSeq:
		return m.startHops(n.parts[0], m.make(frame{n: n, up: up, depth: depth, st: stChild}), dst, hops)
	case kObject, kArray:
		if int(depth) >= m.maxDepth {
			return dst
		}
		depth++
	case kString:
		if n.raw { // no opening quote
			return append(dst, m.make(frame{n: n, up: up, depth: depth, st: 1}))
		}
	}
	return append(dst, m.make(frame{n: n, up: up, depth: depth}))
}

// resume appends the states after a child of up completed.
func (m *matcher) resume(up *frame, dst []*frame) []*frame {
	if up == nil {
		return append(dst, done)
	}
	f := m.make(*up)
	switch up.n.kind {
	case kSeq:
		if int(f.i)+1 == len(f.n.parts) {
			return m.resume(up.up, dst)
		}
		f.i++
		return m.start(f.n.parts[f.i], f, dst)
	case kObject:
		if f.st == stFreeKey {
			f.st = stColon
			return append(dst, f)
		}
		f.st = stNext
		if f.n.free {
			f.i++
		} else {
			f.i = f.aux + 1
		}
		return append(dst, f)
	case kArray:
		f.st, f.i = stNext, f.i+1
		return append(dst, f)
	}
	return dst
}

// feed appends the states after byte b.
func (m *matcher) feed(f *frame, b byte, dst []*frame) []*frame {
	if f == done {
		return dst
	}
	switch f.n.kind {
	case kLiteral:
		if f.n.lit[f.i] != b {
			return dst
		}
		if int(f.i)+1 == len(f.n.lit) {
			return m.resume(f.up, dst)
		}
		g := m.make(*f)
		g.i++
		return append(dst, g)
	case kString:
		return m.feedString(f, b, dst)
	case kNumber:
		return m.feedNumber(f, b, dst)
	case kObject, kArray:
		if f.st == stOpen {
			return m.open(f, b, dst)
		}
		if f.n.kind == kObject {
			return m.feedObject(f, b, dst)
		}
		return m.feedArray(f, b, dst)
	}
	return dst
}

// open takes an object's '{' or an array's '['; an array's first item may
// start at once.
func (m *matcher) open(f *frame, b byte, dst []*frame) []*frame {
	n := f.n
	bracket := byte('{')
	if n.kind == kArray {
		bracket = '['
	}
	if b != bracket {
		return dst
	}
	g := m.make(*f)
	g.st = stFirst
	dst = append(dst, g)
	if n.kind == kArray && n.maxItems > 0 {
		c := m.make(*g)
		c.st = stChild
		dst = m.start(n.items, c, dst)
	}
	return dst
}

func (m *matcher) feedString(f *frame, b byte, dst []*frame) []*frame {
	n := f.n
	if n.raw {
		return m.feedRaw(f, b, dst)
	}
	g := m.make(*f)
	if f.st == 0 {
		if b != '"' {
			return dst
		}
		g.st = 1
		return append(dst, g)
	}
	switch {
	case f.aux == -1: // after '\'
		switch b {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			g.aux = 0
		case 'u':
			g.aux = -2
		default:
			return dst
		}
		return append(dst, g)
	case f.aux < -1: // \uXXXX: surrogates are not written, so every escape is one character
		if !isHex(b) || f.aux == -2 && (b == 'd' || b == 'D') {
			return dst
		}
		g.aux--
		if g.aux == -6 {
			g.aux = 0
		}
		return append(dst, g)
	case f.aux > 0:
		next, ok := utf8Next(f.aux, b)
		if !ok {
			return dst
		}
		g.aux = next
		return append(dst, g)
	}
	if n.format != nil {
		switch {
		case int(f.i) < len(n.format):
			if !byteIn(n.format[f.i], b) {
				return dst
			}
			g.i++
			return append(dst, g)
		case b == '"':
			return m.resume(f.up, dst)
		}
		return dst
	}
	if b == '"' {
		if int(f.i) < n.minLen {
			return dst
		}
		return m.resume(f.up, dst)
	}
	if int(f.i) >= n.maxLen || b < 0x20 || b == '<' && n.noLT {
		return dst
	}
	g.i++
	switch {
	case b == '\\':
		g.aux = -1
	case b >= 0x80:
		aux, ok := utf8Lead(b)
		if !ok {
			return dst
		}
		g.aux = aux
	}
	return append(dst, g)
}

// utf8Lead starts a multi-byte character: the state for its next byte,
// remaining<<16 | lo<<8 | hi (the range that byte must fall in, which
// excludes overlong forms and surrogates).
func utf8Lead(b byte) (int32, bool) {
	switch {
	case b >= 0xC2 && b <= 0xDF:
		return 1<<16 | 0x80<<8 | 0xBF, true
	case b == 0xE0:
		return 2<<16 | 0xA0<<8 | 0xBF, true
	case b == 0xED:
		return 2<<16 | 0x80<<8 | 0x9F, true
	case b >= 0xE1 && b <= 0xEF:
		return 2<<16 | 0x80<<8 | 0xBF, true
	case b == 0xF0:
		return 3<<16 | 0x90<<8 | 0xBF, true
	case b >= 0xF1 && b <= 0xF3:
		return 3<<16 | 0x80<<8 | 0xBF, true
	case b == 0xF4:
		return 3<<16 | 0x80<<8 | 0x8F, true
	}
	return 0, false
}

// utf8Next takes continuation byte b in state aux: the next state (0 when
// the character is complete).
func utf8Next(aux int32, b byte) (int32, bool) {
	lo, hi := byte(aux>>8), byte(aux)
	if b < lo || b > hi {
		return 0, false
	}
	if rem := aux >> 16; rem > 1 {
		return (rem-1)<<16 | 0x80<<8 | 0xBF, true
	}
	return 0, true
}

// feedRaw continues bare argument text (markup formats): any characters
// but control characters and '<' (so the closing tag cannot start inside
// it). The first byte that cannot continue it ends it, and goes to what
// follows.
func (m *matcher) feedRaw(f *frame, b byte, dst []*frame) []*frame {
	n := f.n
	if f.aux > 0 {
		next, ok := utf8Next(f.aux, b)
		if !ok {
			return dst
		}
		g := m.make(*f)
		g.aux = next
		return append(dst, g)
	}
	fits := b >= 0x20 && b != '<' && int(f.i) < n.maxLen
	if n.format != nil {
		fits = int(f.i) < len(n.format) && byteIn(n.format[f.i], b)
	}
	if fits {
		var aux int32
		if b >= 0x80 {
			var ok bool
			if aux, ok = utf8Lead(b); !ok {
				return dst
			}
		}
		g := m.make(*f)
		g.i, g.aux = g.i+1, aux
		return append(dst, g)
	}
	if int(f.i) < n.minLen || n.format != nil && int(f.i) != len(n.format) {
		return dst
	}
	var buf [4]*frame
	for _, r := range m.resume(f.up, buf[:0]) {
		dst = m.feed(r, b, dst)
	}
	return dst
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

func byteIn(class string, b byte) bool {
	for i := 0; i < len(class); i++ {
		if class[i] == b {
			return true
		}
	}
	return false
}

// Number lexer states: -?(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?, no exponent.
const (
	numStart = iota
	numMinus
	numZero
	numInt
	numDot
	numFrac
	maxIntDigits  = 15
	maxFracDigits = 6
)

func numberAccepting(f *frame) bool {
	return f.aux == numZero || f.aux == numInt || f.aux == numFrac
}

func (m *matcher) feedNumber(f *frame, b byte, dst []*frame) []*frame {
	g := m.make(*f)
	digit := b >= '0' && b <= '9'
	switch {
	case (f.aux == numStart || f.aux == numMinus) && b == '0':
		if f.n.positive {
			return dst
		}
		g.aux = numZero
	case (f.aux == numStart || f.aux == numMinus) && digit:
		g.aux, g.i = numInt, 1
	case f.aux == numStart && b == '-' && !f.n.nonNeg:
		g.aux = numMinus
	case f.aux == numInt && digit && f.i < maxIntDigits:
		g.i++
	case (f.aux == numInt || f.aux == numZero) && b == '.' && !f.n.integer:
		g.aux = numDot
	case f.aux == numDot && digit:
		g.aux, g.i = numFrac, 1
	case f.aux == numFrac && digit && f.i < maxFracDigits:
		g.i++
	default:
		// A byte that cannot continue the number ends it (if it is a
		// whole number) and goes to what follows.
		if !numberAccepting(f) {
			return dst
		}
		var buf [4]*frame
		for _, r := range m.resume(f.up, buf[:0]) {
			dst = m.feed(r, b, dst)
		}
		return dst
	}
	return append(dst, g)
}

func (m *matcher) feedObject(f *frame, b byte, dst []*frame) []*frame {
	n := f.n
	g := m.make(*f)
	switch f.st {
	case stFirst, stNext, stComma:
		if b == '}' && f.st != stComma && m.canClose(f) {
			return m.resume(f.up, dst)
		}
		if b == ',' && f.st == stNext && m.canContinue(f) {
			g.st = stComma
			return append(dst, g)
		}
		if b != '"' || f.st == stNext {
			return dst
		}
		if n.free {
			if int(f.i) >= n.maxItems {
				return dst
			}
			g.st = stFreeKey
			for _, k := range m.start(n.keys, g, nil) {
				dst = m.feed(k, b, dst)
			}
			return dst
		}
		for j := int(f.i); j < len(n.props); j++ {
			h := m.make(*f)
			h.st, h.aux, h.k = stKey, int32(j), 1
			dst = append(dst, h)
			if n.props[j].required {
				break
			}
		}
		return dst
	case stKey:
		key := n.props[f.aux].key
		if key[f.k] != b {
			return dst
		}
		g.k++
		if int(g.k) == len(key) {
			g.st = stColon
		}
		return append(dst, g)
	case stColon:
		if b != ':' {
			return dst
		}
		g.st = stChild
		val := n.extra
		if !n.free {
			val = n.props[f.aux].val
		}
		return m.start(val, g, dst)
	}
	return dst
}

// canClose reports whether an object may end here: every property not yet
// written is optional (free objects: always).
func (m *matcher) canClose(f *frame) bool {
	if f.n.free {
		return true
	}
	for _, p := range f.n.props[f.i:] {
		if p.required {
			return false
		}
	}
	return true
}

func (m *matcher) canContinue(f *frame) bool {
	if f.n.free {
		return int(f.i) < f.n.maxItems
	}
	return int(f.i) < len(f.n.props)
}

func (m *matcher) feedArray(f *frame, b byte, dst []*frame) []*frame {
	n := f.n
	g := m.make(*f)
	switch f.st {
	case stFirst, stNext:
		if b == ']' && int(f.i) >= n.minItems {
			return m.resume(f.up, dst)
		}
		if b == ',' && f.st == stNext && int(f.i) < n.maxItems {
			g.st = stChild
			return m.start(n.items, g, dst)
		}
	}
	return dst
}

// accepts reports whether the output may end in thread f.
func (m *matcher) accepts(f *frame) bool {
	if f == done {
		return true
	}
	if f.n.kind == kNumber && numberAccepting(f) {
		for _, r := range m.resume(f.up, nil) {
			if r == done {
				return true
			}
		}
	}
	return false
}

// step feeds b to every thread.
func (m *matcher) step(threads []*frame, b byte, dst []*frame) []*frame {
	for _, t := range threads {
		dst = m.feed(t, b, dst)
		if len(dst) > maxThreads {
			return dst[:maxThreads]
		}
	}
	return dst
}
