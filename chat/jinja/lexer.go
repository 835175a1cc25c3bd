package jinja

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tokEOF        tokKind = iota
	tokText               // template data between tags
	tokVarBegin           // {{
	tokVarEnd             // }}
	tokBlockBegin         // {%
	tokBlockEnd           // %}
	tokName
	tokString
	tokInt
	tokFloat
	tokOp
)

type token struct {
	kind tokKind
	val  string // text, name, operator, or the unescaped string literal
	num  any    // int64 or float64 for number tokens
	line int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of template"
	case tokText:
		return "template data"
	case tokVarBegin:
		return "'{{'"
	case tokVarEnd:
		return "'}}'"
	case tokBlockBegin:
		return "'{%'"
	case tokBlockEnd:
		return "'%}'"
	case tokString:
		return strconv.Quote(t.val)
	}
	return "'" + t.val + "'"
}

// SyntaxError is a template that does not parse; Line is 1-based.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("template syntax error at line %d: %s", e.Line, e.Msg)
}

// pySpace reports whether r is whitespace for Python's str methods and the
// \s class of its re module (unicode.IsSpace plus the four ASCII separators).
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// lex splits a template into tokens the way jinja2's lexer does with
// trim_blocks and lstrip_blocks on: "-" strips all whitespace on that side of
// a tag, "+" keeps it, a block or comment tag alone on its line takes the
// line's indentation with it, and the newline right after a block or comment
// tag is dropped.
func lex(src string) ([]token, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	// keep_trailing_newline=False: one final newline is not part of the template.
	src = strings.TrimSuffix(src, "\n")

	var toks []token
	line := 1
	pos := 0
	lineStarting := true
	for pos < len(src) {
		idx := findTagStart(src, pos)
		if idx < 0 {
			toks = append(toks, token{kind: tokText, val: src[pos:], line: line})
			break
		}
		text := src[pos:idx]
		kind := src[idx+1] // '{', '%' or '#'
		after := idx + 2
		sign := byte(0)
		if after < len(src) && (src[after] == '-' || src[after] == '+') {
			sign = src[after]
			after++
		}
		if sign == '-' {
			text = strings.TrimRightFunc(text, pySpace)
		} else if sign != '+' && kind != '{' {
			lpos := strings.LastIndexByte(text, '\n') + 1
			if lpos > 0 || lineStarting {
				rest := text[lpos:]
				if rest != "" && strings.TrimLeftFunc(rest, pySpace) == "" {
					text = text[:lpos]
				}
			}
		}
		if text != "" {
			toks = append(toks, token{kind: tokText, val: text, line: line})
		}
		line += strings.Count(src[pos:after], "\n")
		pos = after

		switch kind {
		case '#':
			end := strings.Index(src[pos:], "#}")
			if end < 0 {
				return nil, &SyntaxError{line, "missing end of comment tag"}
			}
			body := src[pos : pos+end]
			next := pos + end + 2
			switch {
			case strings.HasSuffix(body, "-"):
				next = skipSpace(src, next)
			case strings.HasSuffix(body, "+"):
			default:
				if next < len(src) && src[next] == '\n' {
					next++
				}
			}
			line += strings.Count(src[pos:next], "\n")
			lineStarting = next > 0 && src[next-1] == '\n'
			pos = next
		case '%':
			if raw, next, ok := lexRaw(src, pos); ok {
				line += strings.Count(src[pos:next], "\n")
				if raw != "" {
					toks = append(toks, token{kind: tokText, val: raw, line: line})
				}
				lineStarting = next > 0 && src[next-1] == '\n'
				pos = next
				continue
			}
			toks = append(toks, token{kind: tokBlockBegin, line: line})
			var err error
			toks, pos, line, err = lexExpr(src, pos, line, toks, true)
			if err != nil {
				return nil, err
			}
			lineStarting = pos > 0 && src[pos-1] == '\n'
		case '{':
			toks = append(toks, token{kind: tokVarBegin, line: line})
			var err error
			toks, pos, line, err = lexExpr(src, pos, line, toks, false)
			if err != nil {
				return nil, err
			}
			lineStarting = pos > 0 && src[pos-1] == '\n'
		}
	}
	toks = append(toks, token{kind: tokEOF, line: line})
	return toks, nil
}

func findTagStart(src string, pos int) int {
	for {
		i := strings.IndexByte(src[pos:], '{')
		if i < 0 || pos+i+1 >= len(src) {
			return -1
		}
		i += pos
		switch src[i+1] {
		case '{', '%', '#':
			return i
		}
		pos = i + 1
	}
}

func skipSpace(src string, pos int) int {
	for pos < len(src) {
		r, n := utf8.DecodeRuneInString(src[pos:])
		if !pySpace(r) {
			break
		}
		pos += n
	}
	return pos
}

// lexRaw handles {% raw %}...{% endraw %}; pos is just after "{%" and its sign.
func lexRaw(src string, pos int) (text string, next int, ok bool) {
	p := skipSpace(src, pos)
	if !strings.HasPrefix(src[p:], "raw") {
		return "", 0, false
	}
	p = skipSpace(src, p+3)
	if p < len(src) && (src[p] == '-' || src[p] == '+') {
		p++
	}
	if !strings.HasPrefix(src[p:], "%}") {
		return "", 0, false
	}
	p += 2
	if p < len(src) && src[p] == '\n' && src[p-3] != '-' && src[p-3] != '+' {
		p++
	} else if src[p-3] == '-' {
		p = skipSpace(src, p)
	}
	for q := p; ; {
		i := strings.Index(src[q:], "{%")
		if i < 0 {
			return "", 0, false
		}
		i += q
		e := i + 2
		sign := byte(0)
		if e < len(src) && (src[e] == '-' || src[e] == '+') {
			sign = src[e]
			e++
		}
		e = skipSpace(src, e)
		if strings.HasPrefix(src[e:], "endraw") {
			e = skipSpace(src, e+6)
			esign := byte(0)
			if e < len(src) && (src[e] == '-' || src[e] == '+') {
				esign = src[e]
				e++
			}
			if strings.HasPrefix(src[e:], "%}") {
				body := src[p:i]
				if sign == '-' {
					body = strings.TrimRightFunc(body, pySpace)
				}
				e += 2
				switch esign {
				case '-':
					e = skipSpace(src, e)
				case 0:
					if e < len(src) && src[e] == '\n' {
						e++
					}
				}
				return body, e, true
			}
		}
		q = i + 2
	}
}

var operators = []string{"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"}

// lexExpr reads the tokens inside a {% %} (block) or {{ }} tag up to and
// including its end marker. End markers only count outside brackets, as in
// jinja2.
func lexExpr(src string, pos, line int, toks []token, block bool) ([]token, int, int, error) {
	depth := 0
	for {
		if pos >= len(src) {
			return nil, 0, 0, &SyntaxError{line, "unexpected end of template inside a tag"}
		}
		if depth == 0 {
			if block {
				if strings.HasPrefix(src[pos:], "-%}") {
					next := skipSpace(src, pos+3)
					line += strings.Count(src[pos:next], "\n")
					return append(toks, token{kind: tokBlockEnd, line: line}), next, line, nil
				}
				if strings.HasPrefix(src[pos:], "+%}") {
					return append(toks, token{kind: tokBlockEnd, line: line}), pos + 3, line, nil
				}
				if strings.HasPrefix(src[pos:], "%}") {
					next := pos + 2
					if next < len(src) && src[next] == '\n' {
						next++
						line++
					}
					return append(toks, token{kind: tokBlockEnd, line: line}), next, line, nil
				}
			} else {
				if strings.HasPrefix(src[pos:], "-}}") {
					next := skipSpace(src, pos+3)
					line += strings.Count(src[pos:next], "\n")
					return append(toks, token{kind: tokVarEnd, line: line}), next, line, nil
				}
				if strings.HasPrefix(src[pos:], "}}") {
					return append(toks, token{kind: tokVarEnd, line: line}), pos + 2, line, nil
				}
			}
		}
		c := src[pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			if c == '\n' {
				line++
			}
			pos++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			end := pos + 1
			for end < len(src) && (src[end] == '_' || src[end] >= 'a' && src[end] <= 'z' || src[end] >= 'A' && src[end] <= 'Z' || src[end] >= '0' && src[end] <= '9') {
				end++
			}
			toks = append(toks, token{kind: tokName, val: src[pos:end], line: line})
			pos = end
		case c >= '0' && c <= '9':
			tok, end, err := lexNumber(src, pos)
			if err != nil {
				return nil, 0, 0, &SyntaxError{line, err.Error()}
			}
			tok.line = line
			toks = append(toks, tok)
			pos = end
		case c == '\'' || c == '"':
			s, end, err := lexString(src, pos)
			if err != nil {
				return nil, 0, 0, &SyntaxError{line, err.Error()}
			}
			toks = append(toks, token{kind: tokString, val: s, line: line})
			line += strings.Count(src[pos:end], "\n")
			pos = end
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(src[pos:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[pos:])
				return nil, 0, 0, &SyntaxError{line, fmt.Sprintf("unexpected character %q", r)}
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					return nil, 0, 0, &SyntaxError{line, fmt.Sprintf("unexpected '%s'", op)}
				}
				depth--
			}
			toks = append(toks, token{kind: tokOp, val: op, line: line})
			pos += len(op)
		}
	}
}

func lexNumber(src string, pos int) (token, int, error) {
	end := pos
	digits := func() {
		for end < len(src) && (src[end] >= '0' && src[end] <= '9' || src[end] == '_' && end+1 < len(src) && src[end+1] >= '0' && src[end+1] <= '9') {
			end++
		}
	}
	digits()
	isFloat := false
	if end+1 < len(src) && src[end] == '.' && src[end+1] >= '0' && src[end+1] <= '9' {
		isFloat = true
		end++
		digits()
	}
	if end < len(src) && (src[end] == 'e' || src[end] == 'E') {
		e := end + 1
		if e < len(src) && (src[e] == '+' || src[e] == '-') {
			e++
		}
		if e < len(src) && src[e] >= '0' && src[e] <= '9' {
			isFloat = true
			end = e
			digits()
		}
	}
	text := strings.ReplaceAll(src[pos:end], "_", "")
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return token{}, 0, fmt.Errorf("bad float literal %q", text)
		}
		return token{kind: tokFloat, val: text, num: f}, end, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return token{}, 0, fmt.Errorf("integer literal %q out of range", text)
	}
	return token{kind: tokInt, val: text, num: n}, end, nil
}

// lexString reads a quoted literal and applies Python's unicode-escape rules
// (unknown escapes are kept verbatim).
func lexString(src string, pos int) (string, int, error) {
	q := src[pos]
	var b strings.Builder
	i := pos + 1
	for i < len(src) {
		c := src[i]
		if c == q {
			return b.String(), i + 1, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(src) {
			break
		}
		e := src[i+1]
		i += 2
		switch e {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+n > len(src) {
				return "", 0, fmt.Errorf("truncated \\%c escape", e)
			}
			v, err := strconv.ParseUint(src[i:i+n], 16, 32)
			if err != nil || v > unicode.MaxRune {
				return "", 0, fmt.Errorf("bad \\%c escape %q", e, src[i:i+n])
			}
			b.WriteRune(rune(v))
			i += n
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(e - '0')
			for k := 0; k < 2 && i < len(src) && src[i] >= '0' && src[i] <= '7'; k++ {
				v = v*8 + int(src[i]-'0')
				i++
			}
			b.WriteRune(rune(v))
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return "", 0, fmt.Errorf("unterminated string literal")
}
