// Package toolcall splits a chat model's raw output into answer text,
// reasoning (<think>...</think>) and structured tool calls, incrementally as
// tokens arrive.
//
// Each model family writes tool calls in its own markup; Detect picks the
// format from the chat template source. A Parser is fed the decoded text in
// pieces and returns events: answer text, reasoning text, and for each call
// its start (with the function name, as soon as it is known), fragments of
// its JSON arguments as they arrive, and its end. Markup never reaches the
// text events; a partial tag at the end of a piece is held back until the
// next piece decides it. A call whose opening markup turns out malformed is
// returned as plain text. Feeding the same output in any split yields the
// same Result as feeding it at once.
//
//	p := toolcall.NewParser(toolcall.Options{Format: toolcall.Detect(tmpl), Tools: tools})
//	for piece := range pieces {
//		for _, ev := range p.Feed(piece) { ... }
//	}
//	for _, ev := range p.Close() { ... }
package toolcall

import (
	"strings"
	"unicode/utf8"
)

// Format is a model family's tool-call markup.
type Format int

const (
	// None: the model has no known tool-call markup; only <think> is parsed.
	None Format = iota
	// Qwen3 (Hermes style): <tool_call>{"name": N, "arguments": {...}}</tool_call>.
	Qwen3
	// Qwen3Coder: <tool_call><function=N><parameter=K>v</parameter>...</function></tool_call>,
	// values typed by the tool's JSON schema.
	Qwen3Coder
	// GLM (GLM-4.5/4.6): <tool_call>N<arg_key>k</arg_key><arg_value>v</arg_value>...</tool_call>.
	GLM
	// DeepSeekV3: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N
	// ```json {...} ```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜> (the V3.1 form
	// N<｜tool▁sep｜>{...} is accepted too).
	DeepSeekV3
)

func (f Format) String() string {
	switch f {
	case Qwen3:
		return "qwen3"
	case Qwen3Coder:
		return "qwen3-coder"
	case GLM:
		return "glm"
	case DeepSeekV3:
		return "deepseek-v3"
	}
	return "none"
}

// ParseFormat returns the Format whose String is name.
func ParseFormat(name string) (Format, bool) {
	for f := None; f <= DeepSeekV3; f++ {
		if f.String() == name {
			return f, true
		}
	}
	return None, false
}

// Detect picks the tool-call format from a chat template's source by the
// markup the template writes for assistant tool calls.
func Detect(templateSource string) Format {
	switch {
	case strings.Contains(templateSource, "tool▁calls▁begin") || strings.Contains(templateSource, "tool▁call▁begin"):
		return DeepSeekV3
	case strings.Contains(templateSource, "<arg_key>"):
		return GLM
	case strings.Contains(templateSource, "<function=") || strings.Contains(templateSource, "<parameter="):
		return Qwen3Coder
	case strings.Contains(templateSource, "<tool_call>"):
		return Qwen3
	}
	return None
}

// Kind says what an Event carries.
type Kind int

const (
	Content   Kind = iota // Text: answer text
	Reasoning             // Text: thinking text
	CallStart             // Index, Name: a tool call begins
	CallArgs              // Index, Text: the next fragment of the call's JSON arguments
	CallEnd               // Index, Text: the call's complete raw markup
)

// Event is one piece of parsed output.
type Event struct {
	Kind  Kind
	Text  string
	Index int // which call (0, 1, ...) for CallStart, CallArgs and CallEnd
	Name  string
}

// Options configure a Parser.
type Options struct {
	Format Format
	// Tools the request offered. With none, tool-call markup stays text.
	Tools []Tool
	// InThinking: the prompt already opened <think>, so the output starts
	// inside the reasoning.
	InThinking bool
}

// Call is one parsed tool call.
type Call struct {
	Name      string
	Arguments string // JSON text; a model that broke its JSON mid-call leaves it invalid
	Raw       string // the call's markup as the model wrote it
}

// Result is a whole output, parsed.
type Result struct {
	Content   string
	Reasoning string
	Calls     []Call
}

// Add folds one event into r.
func (r *Result) Add(e Event) {
	switch e.Kind {
	case Content:
		r.Content += e.Text
	case Reasoning:
		r.Reasoning += e.Text
	case CallStart:
		r.Calls = append(r.Calls, Call{Name: e.Name})
	case CallArgs:
		r.Calls[e.Index].Arguments += e.Text
	case CallEnd:
		r.Calls[e.Index].Raw = e.Text
	}
}

// Parse parses a complete output.
func Parse(o Options, text string) Result {
	p := NewParser(o)
	var r Result
	for _, e := range append(p.Feed(text), p.Close()...) {
		r.Add(e)
	}
	return r
}

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
	// maxHead bounds markup that must be complete before a call is accepted
	// (a name, a key); longer means the output is not a call.
	maxHead = 256
)

type state int

const (
	inText state = iota
	inThink
	inCall
)

// callParser consumes the inside of one call (or DeepSeek call section) from
// p.buf. step returns false when it needs more input; finish ends it at the
// end of the output.
type callParser interface {
	step(p *Parser) bool
	finish(p *Parser)
}

// Parser parses one output incrementally. It is not safe for concurrent use.
type Parser struct {
	format   Format
	schema   schema
	openTags []string // tags that start a call in text

	st    state
	buf   string // input not yet consumed
	call  callParser
	raw   strings.Builder // markup of the current call, for Call.Raw and malformed calls
	calls int             // calls started so far

	out       []Event
	lstrip    bool // drop newlines at the start of the next text (after a tag)
	pendingNL int  // trailing newlines held back until more of the same kind follows
	pendingOf Kind
}

// NewParser returns a parser for one output.
func NewParser(o Options) *Parser {
	p := &Parser{format: o.Format, lstrip: true}
	if o.InThinking {
		p.st = inThink
	}
	if len(o.Tools) > 0 {
		p.schema = newSchema(o.Tools)
		switch o.Format {
		case Qwen3, Qwen3Coder, GLM:
			p.openTags = []string{"<tool_call>"}
		case DeepSeekV3:
			p.openTags = []string{dsCallsBegin, dsCallBegin}
		}
	}
	return p
}

// Feed parses the next piece of output and returns the events it completes.
func (p *Parser) Feed(text string) []Event {
	p.buf += text
	for p.step() {
	}
	return p.take()
}

// Close ends the output: held-back text is flushed and an unfinished call
// is closed (or, if its name was never complete, returned as text).
func (p *Parser) Close() []Event {
	for p.step() {
	}
	switch p.st {
	case inText:
		p.emit(Content, p.buf)
	case inThink:
		p.emit(Reasoning, p.buf)
	case inCall:
		p.call.finish(p)
		if p.st == inText { // the call was given back as text
			p.emit(Content, p.buf)
		}
	}
	p.buf = ""
	return p.take()
}

func (p *Parser) take() []Event {
	out := p.out
	p.out = nil
	return out
}

func (p *Parser) step() bool {
	switch p.st {
	case inText:
		tags := append([]string{thinkOpen, thinkClose}, p.openTags...)
		i, tag := scan(p.buf, tags)
		if tag == "" {
			p.emit(Content, p.buf[:i])
			p.consume(i)
			return false
		}
		p.emit(Content, p.buf[:i])
		p.consume(i)
		p.cut()
		switch tag {
		case thinkOpen:
			p.consume(len(tag))
			p.st = inThink
		case thinkClose:
			p.consume(len(tag))
		default:
			p.st = inCall
			p.raw.Reset()
			p.call = p.newCall(tag)
		}
		return true
	case inThink:
		i, tag := scan(p.buf, []string{thinkClose})
		p.emit(Reasoning, p.buf[:i])
		p.consume(i)
		if tag == "" {
			return false
		}
		p.consume(len(tag))
		p.cut()
		p.st = inText
		return true
	default:
		return p.call.step(p)
	}
}

func (p *Parser) newCall(tag string) callParser {
	switch p.format {
	case Qwen3:
		p.consume(len(tag))
		return &hermesCall{}
	case Qwen3Coder:
		p.consume(len(tag))
		return &coderCall{}
	case GLM:
		p.consume(len(tag))
		return &glmCall{}
	default:
		if tag == dsCallsBegin {
			p.consume(len(tag))
		} // a bare call begin is read by the section parser itself
		return &deepseekCall{}
	}
}

// consume drops n bytes of input, recording them as call markup when inside
// a call.
func (p *Parser) consume(n int) {
	if p.st == inCall {
		p.raw.WriteString(p.buf[:n])
	}
	p.buf = p.buf[n:]
}

// cut marks a tag boundary: newlines held back before it are dropped, and
// newlines right after it are skipped.
func (p *Parser) cut() {
	p.pendingNL = 0
	p.lstrip = true
}

// emit queues text of kind k. Newlines at the end are held back until more
// text of the same kind follows, so that newlines around tags never show.
func (p *Parser) emit(k Kind, s string) {
	if s == "" {
		return
	}
	if p.lstrip && k != CallArgs {
		s = strings.TrimLeft(s, "\n")
		if s == "" {
			return
		}
		p.lstrip = false
	}
	if p.pendingNL > 0 && p.pendingOf == k {
		s = strings.Repeat("\n", p.pendingNL) + s
	}
	t := strings.TrimRight(s, "\n")
	p.pendingNL, p.pendingOf = len(s)-len(t), k
	if t == "" {
		return
	}
	if n := len(p.out); n > 0 && p.out[n-1].Kind == k && k != CallStart && k != CallEnd {
		p.out[n-1].Text += t
		return
	}
	idx := 0
	if k == CallArgs {
		idx = p.calls - 1
	}
	p.out = append(p.out, Event{Kind: k, Text: t, Index: idx})
}

// startCall announces a call whose name is now known.
func (p *Parser) startCall(name string) {
	p.pendingNL = 0
	p.out = append(p.out, Event{Kind: CallStart, Index: p.calls, Name: name})
	p.calls++
}

// args queues a fragment of the current call's arguments.
func (p *Parser) args(s string) { p.emit(CallArgs, s) }

// endCall closes the current call.
func (p *Parser) endCall() {
	p.pendingNL = 0
	p.out = append(p.out, Event{Kind: CallEnd, Index: p.calls - 1, Text: p.raw.String()})
	p.raw.Reset()
}

// toText leaves the call markup and reads text again.
func (p *Parser) toText() {
	p.st = inText
	p.cut()
}

// drain consumes what is left of the input as markup of the current call,
// when the output ends inside it.
func (p *Parser) drain() { p.consume(len(p.buf)) }

// abort gives a call whose head was malformed back as text: the markup seen
// so far is text, and the rest of the input is read as text again.
func (p *Parser) abort() {
	raw := p.raw.String()
	p.raw.Reset()
	p.st = inText
	p.lstrip = false
	p.emit(Content, raw)
}

// scan finds the earliest of tags in s. If none is there it returns the
// length of s less any suffix that could still grow into a tag, and "".
func scan(s string, tags []string) (int, string) {
	best, which := -1, ""
	for _, t := range tags {
		if i := strings.Index(s, t); i >= 0 && (best < 0 || i < best) {
			best, which = i, t
		}
	}
	if best >= 0 {
		return best, which
	}
	return len(s) - PartialSuffix(s, tags), ""
}

// PartialSuffix is the length of the longest suffix of s that is a proper
// prefix of one of tags: the text to hold back while a tag may be forming.
func PartialSuffix(s string, tags []string) int {
	n := 0
	for _, t := range tags {
		for k := min(len(t)-1, len(s)); k > n; k-- {
			if strings.HasSuffix(s, t[:k]) {
				n = k
				break
			}
		}
	}
	return n
}

// skipPast consumes input through tag and reports whether tag was reached
// (short of it, it keeps any suffix that may grow into the tag).
func (p *Parser) skipPast(tag string) bool {
	i, found := scan(p.buf, []string{tag})
	p.consume(i)
	if found == "" {
		return false
	}
	p.consume(len(tag))
	return true
}

// skipSpace consumes leading whitespace and reports whether input remains.
func (p *Parser) skipSpace() bool {
	p.consume(len(p.buf) - len(strings.TrimLeft(p.buf, " \t\r\n")))
	return p.buf != ""
}

// couldBe reports whether s is a proper prefix of tag, so more input may
// complete it.
func couldBe(s, tag string) bool { return len(s) < len(tag) && strings.HasPrefix(tag, s) }

// validName accepts a function name: non-empty, short, no spaces or markup.
func validName(s string) bool {
	if s == "" || len(s) > maxHead {
		return false
	}
	return !strings.ContainsAny(s, " \t\r\n<>\"'{}")
}

// runeSafe is the length of the longest prefix of s[:n] that does not end
// inside a UTF-8 sequence that s may still complete.
func runeSafe(s string, n int) int {
	for k := 1; k <= 3 && k <= n; k++ {
		c := s[n-k]
		if c < 0x80 {
			return n
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRuneInString(s[n-k : n]) {
				return n - k
			}
			return n
		}
	}
	return n
}
