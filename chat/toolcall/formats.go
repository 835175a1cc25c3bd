package toolcall

import (
	"encoding/json"
	"regexp"
	"strings"
)

const (
	callClose = "</tool_call>"
	callOpen  = "<tool_call>"

	dsCallsBegin = "<｜tool▁calls▁begin｜>"
	dsCallsEnd   = "<｜tool▁calls▁end｜>"
	dsCallBegin  = "<｜tool▁call▁begin｜>"
	dsCallEnd    = "<｜tool▁call▁end｜>"
	dsSep        = "<｜tool▁sep｜>"
)

// hermesCall reads Qwen3's <tool_call>{"name": N, "arguments": {...}}</tool_call>.
// When the JSON starts with the name and then the arguments object (as the
// chat template teaches), the name is announced at once and the arguments
// stream as written; any other shape waits for </tool_call> and is parsed
// whole.
type hermesCall struct {
	phase    int // 0 head, 1 arguments, 2 after the arguments
	depth    int
	inStr    bool
	esc      bool
	searched int // bytes of the head already searched for </tool_call>
}

var hermesHead = regexp.MustCompile(`^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"(?:arguments|parameters)"\s*:\s*\{`)

func (c *hermesCall) step(p *Parser) bool {
	switch c.phase {
	case 0:
		if m := hermesHead.FindStringSubmatchIndex(p.buf); m != nil {
			var name string
			if json.Unmarshal([]byte(p.buf[m[2]:m[3]]), &name) == nil && validName(name) {
				p.consume(m[1] - 1) // up to the arguments' '{'
				p.startCall(name)
				c.phase = 1
				return true
			}
		}
		from := max(0, c.searched-len(callClose)+1)
		i := strings.Index(p.buf[from:], callClose)
		if i < 0 {
			c.searched = len(p.buf)
			return false
		}
		body := p.buf[:from+i]
		p.consume(len(body) + len(callClose))
		name, args, ok := hermesWhole(body)
		if !ok {
			p.abort()
			return true
		}
		p.startCall(name)
		p.args(args)
		p.endCall()
		p.toText()
		return true
	case 1:
		n, done := c.scanArgs(p.buf)
		p.args(p.buf[:n])
		p.consume(n)
		if done {
			c.phase = 2
		}
		return done
	default:
		// Whatever follows the arguments up to </tool_call> is the JSON's
		// closing brace (or noise); a new <tool_call> also ends this one.
		i, tag := scan(p.buf, []string{callClose, callOpen})
		p.consume(i)
		if tag == "" {
			return false
		}
		if tag == callClose {
			p.consume(len(tag))
		}
		p.endCall()
		p.toText()
		return true
	}
}

// scanArgs reads the arguments object through its closing brace, tracking
// nesting and strings. A '<' outside a string cannot be JSON: the model has
// left the arguments, so they end there.
func (c *hermesCall) scanArgs(s string) (n int, done bool) {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if c.inStr {
			switch {
			case c.esc:
				c.esc = false
			case ch == '\\':
				c.esc = true
			case ch == '"':
				c.inStr = false
			}
			continue
		}
		switch ch {
		case '"':
			c.inStr = true
		case '{', '[':
			c.depth++
		case '}', ']':
			c.depth--
			if c.depth == 0 {
				return i + 1, true
			}
		case '<':
			return i, true
		}
	}
	return len(s), false
}

func (c *hermesCall) finish(p *Parser) {
	if c.phase == 0 {
		p.abort()
		return
	}
	p.drain()
	p.endCall()
	p.toText()
}

// hermesWhole parses a complete call body: {"name": N, "arguments": A}
// with A an object, or a string holding one ("parameters" is accepted for
// "arguments"; absent arguments are {}).
func hermesWhole(body string) (name, args string, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &m) != nil {
		return "", "", false
	}
	if json.Unmarshal(m["name"], &name) != nil || !validName(name) {
		return "", "", false
	}
	a, has := m["arguments"]
	if !has {
		a, has = m["parameters"]
	}
	if !has {
		return name, "{}", true
	}
	var s string
	if json.Unmarshal(a, &s) == nil {
		a = json.RawMessage(s)
	}
	if t := strings.TrimSpace(string(a)); !strings.HasPrefix(t, "{") || !json.Valid(a) {
		return "", "", false
	}
	return name, string(a), true
}

// argWriter builds a call's JSON arguments from bare key/value pairs, for
// the formats that write values as text. String values stream as they
// arrive; other values are typed when complete.
type argWriter struct {
	n    int    // parameters written
	typ  string // type of the open value
	open bool
	val  strings.Builder // a non-string value so far
}

func (a *argWriter) begin(p *Parser, key, typ string) {
	if a.n > 0 {
		p.args(", ")
	}
	a.n++
	p.args(quote(key) + ": ")
	a.typ, a.open = typ, true
	a.val.Reset()
	if typ == "string" {
		p.args(`"`)
	}
}

func (a *argWriter) value(p *Parser, s string) {
	if a.typ == "string" {
		p.args(escape(s))
	} else {
		a.val.WriteString(s)
	}
}

func (a *argWriter) end(p *Parser) {
	if !a.open {
		return
	}
	a.open = false
	if a.typ == "string" {
		p.args(`"`)
	} else {
		p.args(typedValue(a.val.String(), a.typ))
	}
}

// streamValue passes value text up to closeTag to the open parameter and
// reports whether the tag was reached (and consumed). trimNL drops one
// newline before the tag (Qwen3-Coder writes the value on its own lines).
func (a *argWriter) streamValue(p *Parser, closeTag string, trimNL bool) bool {
	i, tag := scan(p.buf, []string{closeTag})
	if tag == "" {
		if trimNL && i > 0 && p.buf[i-1] == '\n' {
			i-- // may be the newline before the tag
		}
		i = runeSafe(p.buf, i)
		a.value(p, p.buf[:i])
		p.consume(i)
		return false
	}
	v := p.buf[:i]
	if trimNL {
		v = strings.TrimSuffix(v, "\n")
	}
	a.value(p, v)
	p.consume(i + len(tag))
	a.end(p)
	return true
}

// skipJunk drops input up to the next '<' (at least one byte), for noise
// between a call's tags.
func skipJunk(p *Parser) {
	i := strings.IndexByte(p.buf[1:], '<')
	if i < 0 {
		p.consume(len(p.buf))
		return
	}
	p.consume(i + 1)
}

// objectCall is what the formats that write arguments as key/value tags
// (Qwen3-Coder, GLM) share: the call's name and its arguments object.
type objectCall struct {
	phase  int // 0: the head, before the call has started; then the format's own
	name   string
	closed bool // the arguments' '}' is written
	args   argWriter
}

// open starts the call and its arguments object.
func (c *objectCall) open(p *Parser, name string) {
	c.name = name
	p.startCall(name)
	p.args("{")
	c.phase = 1
}

// close ends an open value, the arguments object and the call.
func (c *objectCall) close(p *Parser) {
	c.args.end(p)
	if !c.closed {
		p.args("}")
	}
	p.endCall()
}

func (c *objectCall) finish(p *Parser) {
	if c.phase == 0 {
		p.abort()
		return
	}
	p.drain()
	c.close(p)
	p.toText()
}

// coderCall reads Qwen3-Coder's
// <tool_call><function=N><parameter=K>value</parameter>...</function></tool_call>.
type coderCall struct {
	objectCall      // phase: 0 head, 1 between parameters, 2 value, 3 after </function>
	lead       bool // the value's first newline is still to be dropped
}

const (
	coderFunc       = "<function="
	coderFuncClose  = "</function>"
	coderParam      = "<parameter="
	coderParamClose = "</parameter>"
)

func (c *coderCall) step(p *Parser) bool {
	switch c.phase {
	case 0:
		if !p.skipSpace() {
			return false
		}
		name, n, ok := tagAttr(p.buf, coderFunc)
		if n == 0 {
			return false
		}
		if !ok || !validName(name) {
			p.abort()
			return true
		}
		p.consume(n)
		c.open(p, name)
		return true
	case 1:
		if !p.skipSpace() {
			return false
		}
		switch {
		case strings.HasPrefix(p.buf, coderParam):
			key, n, ok := tagAttr(p.buf, coderParam)
			if n == 0 {
				return false
			}
			if !ok || key == "" {
				skipJunk(p)
				return true
			}
			p.consume(n)
			c.args.begin(p, key, p.schema.typeOf(c.name, key))
			c.phase, c.lead = 2, true
			return true
		case strings.HasPrefix(p.buf, coderFuncClose):
			p.consume(len(coderFuncClose))
			p.args("}")
			c.closed = true
			c.phase = 3
			return true
		case strings.HasPrefix(p.buf, callClose):
			p.consume(len(callClose))
			c.close(p)
			p.toText()
			return true
		case couldBe(p.buf, coderParam) || couldBe(p.buf, coderFuncClose) || couldBe(p.buf, callClose):
			return false
		}
		skipJunk(p)
		return true
	case 2:
		if c.lead {
			if p.buf == "" {
				return false
			}
			if p.buf[0] == '\n' {
				p.consume(1)
			}
			c.lead = false
		}
		if !c.args.streamValue(p, coderParamClose, true) {
			return false
		}
		c.phase = 1
		return true
	default:
		if !p.skipPast(callClose) {
			return false
		}
		p.endCall()
		p.toText()
		return true
	}
}

// tagAttr reads <prefixVALUE> at the start of s. n is the length of the
// whole tag, or 0 when more input is needed; ok is false when s cannot be
// such a tag.
func tagAttr(s, prefix string) (val string, n int, ok bool) {
	if !strings.HasPrefix(s, prefix) {
		if couldBe(s, prefix) {
			return "", 0, true
		}
		return "", len(s), false
	}
	rest := s[len(prefix):]
	j := strings.IndexByte(rest, '>')
	if j < 0 {
		if len(rest) > maxHead || strings.ContainsAny(rest, "\n<") {
			return "", len(s), false
		}
		return "", 0, true
	}
	return strings.TrimSpace(rest[:j]), len(prefix) + j + 1, !strings.ContainsAny(rest[:j], "\n<")
}

// glmCall reads GLM-4.5's
// <tool_call>N\n<arg_key>k</arg_key>\n<arg_value>v</arg_value>...</tool_call>.
type glmCall struct {
	objectCall // phase: 0 name, 1 between arguments, 2 before the value, 3 value
	key        string
}

const (
	glmKey        = "<arg_key>"
	glmKeyClose   = "</arg_key>"
	glmValue      = "<arg_value>"
	glmValueClose = "</arg_value>"
)

func (c *glmCall) step(p *Parser) bool {
	switch c.phase {
	case 0:
		if !p.skipSpace() {
			return false
		}
		i, tag := scan(p.buf, []string{"\n", glmKey, callClose})
		if tag == "" {
			if len(p.buf) > maxHead {
				p.abort()
				return true
			}
			return false
		}
		name := strings.TrimSpace(p.buf[:i])
		if !validName(name) {
			p.abort()
			return true
		}
		p.consume(i)
		c.open(p, name)
		return true
	case 1:
		if !p.skipSpace() {
			return false
		}
		switch {
		case strings.HasPrefix(p.buf, glmKey):
			end := strings.Index(p.buf, glmKeyClose)
			if end < 0 {
				if len(p.buf) > maxHead {
					skipJunk(p)
					return true
				}
				return false
			}
			c.key = strings.TrimSpace(p.buf[len(glmKey):end])
			p.consume(end + len(glmKeyClose))
			c.phase = 2
			return true
		case strings.HasPrefix(p.buf, callClose):
			p.consume(len(callClose))
			c.close(p)
			p.toText()
			return true
		case couldBe(p.buf, glmKey) || couldBe(p.buf, callClose):
			return false
		}
		skipJunk(p)
		return true
	case 2:
		if !p.skipSpace() {
			return false
		}
		if !strings.HasPrefix(p.buf, glmValue) {
			if couldBe(p.buf, glmValue) {
				return false
			}
			c.phase = 1 // a key without a value is dropped
			return true
		}
		p.consume(len(glmValue))
		c.args.begin(p, c.key, p.schema.typeOf(c.name, c.key))
		c.phase = 3
		return true
	default:
		if !c.args.streamValue(p, glmValueClose, false) {
			return false
		}
		c.phase = 1
		return true
	}
}

// deepseekCall reads a DeepSeek-V3 call section:
// <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N\n```json\n{...}\n```<｜tool▁call▁end｜>
// ...<｜tool▁calls▁end｜>, and the V3.1 form <｜tool▁call▁begin｜>N<｜tool▁sep｜>{...}<｜tool▁call▁end｜>.
type deepseekCall struct {
	phase  int // 0 between calls, 1 head, 2 name line, 3 fence, 4 arguments, 5 after the fence
	fenced bool
	made   int // calls in this section
}

func (c *deepseekCall) step(p *Parser) bool {
	switch c.phase {
	case 0:
		if !p.skipSpace() {
			return false
		}
		switch {
		case strings.HasPrefix(p.buf, dsCallBegin):
			p.consume(len(dsCallBegin))
			c.phase = 1
		case strings.HasPrefix(p.buf, dsCallsEnd):
			p.consume(len(dsCallsEnd))
			p.toText()
		case couldBe(p.buf, dsCallBegin) || couldBe(p.buf, dsCallsEnd):
			return false
		case c.made == 0:
			p.abort()
		default:
			p.toText() // the section ended without its closing tag
		}
		return true
	case 1:
		i, tag := scan(p.buf, []string{dsSep, dsCallEnd})
		if tag == "" {
			if i > maxHead {
				p.abort()
				return true
			}
			return false
		}
		if tag == dsCallEnd {
			p.abort()
			return true
		}
		head := strings.TrimSpace(p.buf[:i])
		p.consume(i + len(dsSep))
		switch {
		case head == "function":
			c.phase = 2
		case validName(head):
			c.start(p, head)
		default:
			p.abort()
		}
		return true
	case 2:
		i := strings.IndexByte(p.buf, '\n')
		if i < 0 {
			if len(p.buf) > maxHead {
				p.abort()
				return true
			}
			return false
		}
		name := strings.TrimSpace(p.buf[:i])
		if !validName(name) {
			p.abort()
			return true
		}
		p.consume(i + 1)
		c.start(p, name)
		return true
	case 3:
		if !p.skipSpace() {
			return false
		}
		if strings.HasPrefix(p.buf, "```") {
			i := strings.IndexByte(p.buf, '\n')
			if i < 0 {
				return false
			}
			p.consume(i + 1)
			c.fenced = true
		} else if couldBe(p.buf, "```") {
			return false
		}
		c.phase = 4
		return true
	case 4:
		ends := []string{dsCallEnd}
		if c.fenced {
			// JSON keeps newlines inside strings escaped, so a newline and a
			// fence can only close the block.
			ends = append(ends, "\n```")
		}
		i, tag := scan(p.buf, ends)
		p.args(p.buf[:i])
		p.consume(i)
		if tag == "" {
			return false
		}
		p.consume(len(tag))
		if tag == dsCallEnd {
			c.end(p)
		} else {
			c.phase = 5
		}
		return true
	default:
		if !p.skipPast(dsCallEnd) {
			return false
		}
		c.end(p)
		return true
	}
}

func (c *deepseekCall) start(p *Parser, name string) {
	p.startCall(name)
	c.made++
	c.phase = 3
	c.fenced = false
}

func (c *deepseekCall) end(p *Parser) {
	p.endCall()
	c.phase = 0
}

func (c *deepseekCall) finish(p *Parser) {
	switch c.phase {
	case 0:
		if c.made == 0 {
			p.abort()
			return
		}
	case 1, 2:
		p.abort()
		return
	default:
		p.drain()
		p.endCall()
	}
	p.drain()
	p.toText()
}
