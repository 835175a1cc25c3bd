package jinja

import (
	"fmt"
	"slices"
)

// Statements.
type (
	node interface{}

	textNode   struct{ text string }
	outputNode struct{ expr expr }
	ifNode     struct {
		conds  []expr
		bodies [][]node // len(bodies) == len(conds) or len(conds)+1 with an else
	}
	forNode struct {
		target   assignTarget
		iter     expr
		filter   expr // inline "if", may be nil
		body     []node
		elseBody []node
		line     int
	}
	setNode struct {
		target assignTarget
		value  expr
	}
	setBlockNode struct {
		target  assignTarget
		filters []*filterExpr // applied to the rendered body, innermost first
		body    []node
	}
	macroNode struct {
		name     string
		params   []string
		defaults []expr // per param, nil when none
		body     []node
	}
	withNode struct {
		targets []assignTarget
		values  []expr
		body    []node
	}
	filterBlockNode struct {
		filters []*filterExpr
		body    []node
	}
	breakNode    struct{}
	continueNode struct{}
)

// assignTarget is what set and for assign to: one name, a namespace
// attribute (ns.attr), or several names unpacked from a sequence.
type assignTarget struct {
	names []string
	attr  string // with one name: set names[0].attr
	tuple bool
}

// Expressions.
type (
	expr interface{}

	constExpr struct{ v any }
	nameExpr  struct {
		name string
		line int
	}
	getattrExpr struct {
		obj  expr
		name string
		line int
	}
	getitemExpr struct {
		obj, key expr
		line     int
	}
	sliceExpr struct{ start, stop, step expr }
	callExpr  struct {
		fn     expr
		args   []expr
		kwargs []kwarg
		line   int
	}
	filterExpr struct {
		arg    expr // nil inside a filter chain of {% filter %} and {% set %} blocks
		name   string
		args   []expr
		kwargs []kwarg
		line   int
	}
	testExpr struct {
		arg    expr
		name   string
		args   []expr
		kwargs []kwarg
		line   int
	}
	binExpr struct {
		op   string
		l, r expr
		line int
	}
	unaryExpr struct {
		op   string
		x    expr
		line int
	}
	compareExpr struct {
		first expr
		ops   []string
		rest  []expr
		line  int
	}
	condExpr struct {
		cond, then, els expr // els may be nil
	}
	listExpr  struct{ items []expr }
	tupleExpr struct{ items []expr }
	dictExpr  struct{ keys, vals []expr }
)

type kwarg struct {
	name string
	val  expr
}

type parser struct {
	toks  []token
	pos   int
	depth int // nesting of statements and sub-expressions being parsed
}

// maxNesting bounds recursion so that hostile templates fail with an error
// instead of exhausting the stack.
const maxNesting = 256

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errf("template nested deeper than %d levels", maxNesting)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) cur() token  { return p.toks[p.pos] }
func (p *parser) peek() token { return p.toks[min(p.pos+1, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if p.pos < len(p.toks)-1 {
		p.pos++
	}
	return t
}

func (p *parser) errf(format string, a ...any) error {
	return &SyntaxError{p.cur().line, fmt.Sprintf(format, a...)}
}

func (p *parser) isOp(op string) bool     { t := p.cur(); return t.kind == tokOp && t.val == op }
func (p *parser) isName(name string) bool { t := p.cur(); return t.kind == tokName && t.val == name }

func (p *parser) expectOp(op string) error {
	if !p.isOp(op) {
		return p.errf("expected '%s', got %s", op, p.cur())
	}
	p.next()
	return nil
}

func (p *parser) expectName() (string, error) {
	if p.cur().kind != tokName {
		return "", p.errf("expected a name, got %s", p.cur())
	}
	return p.next().val, nil
}

func (p *parser) expectBlockEnd() error {
	if p.cur().kind != tokBlockEnd {
		return p.errf("expected end of statement block, got %s", p.cur())
	}
	p.next()
	return nil
}

// parseBody parses nodes until one of the end tags ({% endfor %}, {% else %}...)
// and returns the body and the tag name found, leaving the parser just after
// the tag's name.
func (p *parser) parseBody(ends ...string) ([]node, string, error) {
	var body []node
	for {
		t := p.cur()
		switch t.kind {
		case tokEOF:
			if len(ends) > 0 {
				return nil, "", p.errf("unexpected end of template, expected one of %v", ends)
			}
			return body, "", nil
		case tokText:
			p.next()
			body = append(body, &textNode{t.val})
		case tokVarBegin:
			p.next()
			e, err := p.parseTuple(true, false)
			if err != nil {
				return nil, "", err
			}
			if p.cur().kind != tokVarEnd {
				return nil, "", p.errf("expected end of print statement, got %s", p.cur())
			}
			p.next()
			body = append(body, &outputNode{e})
		case tokBlockBegin:
			if nt := p.peek(); nt.kind == tokName && slices.Contains(ends, nt.val) {
				p.next()
				p.next()
				return body, nt.val, nil
			}
			p.next()
			n, err := p.parseStatement()
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				body = append(body, n)
			}
		default:
			return nil, "", p.errf("unexpected %s", t)
		}
	}
}

// parseBlockBody reads the end of a block's opening tag, then its body
// (see parseBody).
func (p *parser) parseBlockBody(ends ...string) ([]node, string, error) {
	if err := p.expectBlockEnd(); err != nil {
		return nil, "", err
	}
	return p.parseBody(ends...)
}

func (p *parser) parseStatement() (node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.cur()
	if t.kind != tokName {
		return nil, p.errf("expected a statement name, got %s", t)
	}
	p.next()
	switch t.val {
	case "if":
		return p.parseIf()
	case "for":
		return p.parseFor(t.line)
	case "set":
		return p.parseSet()
	case "macro":
		return p.parseMacro()
	case "filter":
		filters, err := p.parseFilterChain()
		if err != nil {
			return nil, err
		}
		body, _, err := p.parseBlockBody("endfilter")
		if err != nil {
			return nil, err
		}
		return &filterBlockNode{filters, body}, p.expectBlockEnd()
	case "with":
		return p.parseWith()
	case "generation":
		// transformers' marker for assistant text; it renders its body unchanged.
		body, _, err := p.parseBlockBody("endgeneration")
		if err != nil {
			return nil, err
		}
		return &filterBlockNode{nil, body}, p.expectBlockEnd()
	case "break":
		return &breakNode{}, p.expectBlockEnd()
	case "continue":
		return &continueNode{}, p.expectBlockEnd()
	}
	return nil, &SyntaxError{t.line, fmt.Sprintf("unknown or unsupported tag '%s'", t.val)}
}

func (p *parser) parseWith() (node, error) {
	n := &withNode{}
	for p.cur().kind != tokBlockEnd {
		if len(n.targets) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		target, err := p.parseAssignTarget(false)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, target)
		n.values = append(n.values, v)
	}
	body, _, err := p.parseBlockBody("endwith")
	if err != nil {
		return nil, err
	}
	n.body = body
	return n, p.expectBlockEnd()
}

func (p *parser) parseIf() (node, error) {
	n := &ifNode{}
	for {
		cond, err := p.parseTuple(false, false)
		if err != nil {
			return nil, err
		}
		body, end, err := p.parseBlockBody("elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			body, _, err := p.parseBlockBody("endif")
			if err != nil {
				return nil, err
			}
			n.bodies = append(n.bodies, body)
		}
		return n, p.expectBlockEnd()
	}
}

func (p *parser) parseFor(line int) (node, error) {
	target, err := p.parseAssignTarget(false)
	if err != nil {
		return nil, err
	}
	if !p.isName("in") {
		return nil, p.errf("expected 'in' in for loop, got %s", p.cur())
	}
	p.next()
	iter, err := p.parseTuple(false, false)
	if err != nil {
		return nil, err
	}
	n := &forNode{target: target, iter: iter, line: line}
	if p.isName("if") {
		p.next()
		if n.filter, err = p.parseExpression(true); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, p.errf("recursive for loops are not supported")
	}
	body, end, err := p.parseBlockBody("else", "endfor")
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if n.elseBody, _, err = p.parseBlockBody("endfor"); err != nil {
			return nil, err
		}
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseAssignTarget(withNamespace bool) (assignTarget, error) {
	var t assignTarget
	if withNamespace && p.cur().kind == tokName && p.peek().kind == tokOp && p.peek().val == "." {
		name := p.next().val
		p.next()
		attr, err := p.expectName()
		if err != nil {
			return t, err
		}
		return assignTarget{names: []string{name}, attr: attr}, nil
	}
	paren := p.isOp("(")
	if paren {
		p.next()
	}
	for {
		name, err := p.expectName()
		if err != nil {
			return t, err
		}
		t.names = append(t.names, name)
		if !p.isOp(",") {
			break
		}
		t.tuple = true
		p.next()
		if p.cur().kind != tokName {
			break
		}
	}
	if paren {
		t.tuple = true
		if err := p.expectOp(")"); err != nil {
			return t, err
		}
	}
	return t, nil
}

func (p *parser) parseSet() (node, error) {
	target, err := p.parseAssignTarget(true)
	if err != nil {
		return nil, err
	}
	if p.isOp("=") {
		p.next()
		v, err := p.parseTuple(true, false)
		if err != nil {
			return nil, err
		}
		return &setNode{target, v}, p.expectBlockEnd()
	}
	n := &setBlockNode{target: target}
	if p.isOp("|") {
		if n.filters, err = p.parseFilterChain(); err != nil {
			return nil, err
		}
	}
	if n.body, _, err = p.parseBlockBody("endset"); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

// parseFilterChain parses "name(args) | name ..." for {% filter %} and
// {% set x | f %}; the leading "|" is optional.
func (p *parser) parseFilterChain() ([]*filterExpr, error) {
	var fs []*filterExpr
	for {
		if p.isOp("|") {
			p.next()
		}
		f, err := p.parseFilter(nil)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
		if !p.isOp("|") {
			return fs, nil
		}
	}
}

func (p *parser) parseMacro() (node, error) {
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	n := &macroNode{name: name}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	for !p.isOp(")") {
		if len(n.params) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		pn, err := p.expectName()
		if err != nil {
			return nil, err
		}
		var def expr
		if p.isOp("=") {
			p.next()
			if def, err = p.parseExpression(true); err != nil {
				return nil, err
			}
		}
		n.params = append(n.params, pn)
		n.defaults = append(n.defaults, def)
	}
	p.next()
	if n.body, _, err = p.parseBlockBody("endmacro"); err != nil {
		return nil, err
	}
	if p.cur().kind == tokName && p.cur().val == name {
		p.next()
	}
	return n, p.expectBlockEnd()
}

// parseTuple parses one expression or a comma-separated tuple of them.
// withCond enables "a if b else c"; explicitParens means we are inside "(".
func (p *parser) parseTuple(withCond, explicitParens bool) (expr, error) {
	var items []expr
	isTuple := false
	for {
		if len(items) > 0 {
			if !p.isOp(",") {
				break
			}
			p.next()
			isTuple = true
		}
		if p.tupleEnds() {
			break
		}
		e, err := p.parseExpression(withCond)
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if !isTuple {
		if len(items) == 0 {
			if explicitParens {
				return &tupleExpr{}, nil
			}
			return nil, p.errf("expected an expression, got %s", p.cur())
		}
		return items[0], nil
	}
	return &tupleExpr{items}, nil
}

func (p *parser) tupleEnds() bool {
	t := p.cur()
	switch t.kind {
	case tokVarEnd, tokBlockEnd, tokEOF:
		return true
	case tokOp:
		return t.val == ")"
	case tokName:
		return t.val == "recursive"
	}
	return false
}

func (p *parser) parseExpression(withCond bool) (expr, error) {
	if !withCond {
		return p.parseOr()
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.next()
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var els expr
		if p.isName("else") {
			p.next()
			if els, err = p.parseExpression(true); err != nil {
				return nil, err
			}
		}
		e = &condExpr{cond: cond, then: e, els: els}
	}
	return e, nil
}

func (p *parser) parseOr() (expr, error) {
	return p.parseLeft(p.parseAnd, p.isName, "or")
}

func (p *parser) parseAnd() (expr, error) {
	return p.parseLeft(p.parseNot, p.isName, "and")
}

// parseLeft parses one level of left-associative binary operators:
// operand (op operand)*, where is(op) tells whether op is next.
func (p *parser) parseLeft(operand func() (expr, error), is func(string) bool, ops ...string) (expr, error) {
	l, err := operand()
	for err == nil && slices.ContainsFunc(ops, is) {
		t := p.next()
		var r expr
		if r, err = operand(); err == nil {
			l = &binExpr{t.val, l, r, t.line}
		}
	}
	return l, err
}

func (p *parser) parseNot() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.isName("not") {
		line := p.next().line
		x, err := p.parseNot()
		return &unaryExpr{"not", x, line}, err
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	line := p.cur().line
	first, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	c := &compareExpr{first: first, line: line}
	for {
		var op string
		switch t := p.cur(); {
		case t.kind == tokOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			op = t.val
			p.next()
		case p.isName("in"):
			op = "in"
			p.next()
		case p.isName("not") && p.peek().kind == tokName && p.peek().val == "in":
			op = "not in"
			p.next()
			p.next()
		}
		if op == "" {
			break
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
	if len(c.ops) == 0 {
		return first, nil
	}
	return c, nil
}

func (p *parser) parseMath1() (expr, error) {
	return p.parseLeft(p.parseConcat, p.isOp, "+", "-")
}

func (p *parser) parseConcat() (expr, error) {
	return p.parseLeft(p.parseMath2, p.isOp, "~")
}

func (p *parser) parseMath2() (expr, error) {
	return p.parseLeft(p.parsePow, p.isOp, "*", "/", "//", "%")
}

func (p *parser) parsePow() (expr, error) {
	return p.parseLeft(func() (expr, error) { return p.parseUnary(true) }, p.isOp, "**")
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	var e expr
	var err error
	if p.isOp("-") || p.isOp("+") {
		t := p.next()
		var x expr
		if x, err = p.parseUnary(false); err != nil {
			return nil, err
		}
		e = &unaryExpr{t.val, x, t.line}
	} else if e, err = p.parsePrimary(); err != nil {
		return nil, err
	}
	if e, err = p.parsePostfix(e); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(e)
	}
	return e, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.cur()
	switch t.kind {
	case tokName:
		p.next()
		switch t.val {
		case "true", "True":
			return &constExpr{true}, nil
		case "false", "False":
			return &constExpr{false}, nil
		case "none", "None":
			return &constExpr{nil}, nil
		}
		return &nameExpr{t.val, t.line}, nil
	case tokString:
		s := p.next().val
		for p.cur().kind == tokString {
			s += p.next().val
		}
		return &constExpr{s}, nil
	case tokInt, tokFloat:
		p.next()
		return &constExpr{t.num}, nil
	case tokOp:
		switch t.val {
		case "(":
			p.next()
			e, err := p.parseTuple(true, true)
			if err != nil {
				return nil, err
			}
			return e, p.expectOp(")")
		case "[":
			p.next()
			l := &listExpr{}
			return l, p.parseCommaList("]", func() error {
				e, err := p.parseExpression(true)
				if err != nil {
					return err
				}
				l.items = append(l.items, e)
				return nil
			})
		case "{":
			p.next()
			d := &dictExpr{}
			return d, p.parseCommaList("}", func() error {
				k, err := p.parseExpression(true)
				if err != nil {
					return err
				}
				if err := p.expectOp(":"); err != nil {
					return err
				}
				v, err := p.parseExpression(true)
				if err != nil {
					return err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
				return nil
			})
		}
	}
	return nil, p.errf("unexpected %s", t)
}

func (p *parser) parsePostfix(e expr) (expr, error) {
	for {
		t := p.cur()
		switch {
		case t.kind == tokOp && t.val == ".":
			p.next()
			a := p.next()
			switch a.kind {
			case tokName:
				e = &getattrExpr{e, a.val, a.line}
			case tokInt:
				e = &getitemExpr{e, &constExpr{a.num}, a.line}
			default:
				return nil, &SyntaxError{a.line, fmt.Sprintf("expected an attribute name after '.', got %s", a)}
			}
		case t.kind == tokOp && t.val == "[":
			p.next()
			k, err := p.parseSubscript()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp("]"); err != nil {
				return nil, err
			}
			e = &getitemExpr{e, k, t.line}
		case t.kind == tokOp && t.val == "(":
			c, err := p.parseCall(e)
			if err != nil {
				return nil, err
			}
			e = c
		default:
			return e, nil
		}
	}
}

func (p *parser) parseSubscript() (expr, error) {
	var parts [3]expr
	i := 0
	isSlice := false
	for {
		if p.isOp(":") {
			if i == 2 {
				return nil, p.errf("too many ':' in slice")
			}
			isSlice = true
			p.next()
			i++
			continue
		}
		if p.isOp("]") {
			break
		}
		if parts[i] != nil {
			return nil, p.errf("expected ':' or ']', got %s", p.cur())
		}
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		parts[i] = e
	}
	if !isSlice {
		if parts[0] == nil {
			return nil, p.errf("empty subscript")
		}
		return parts[0], nil
	}
	return &sliceExpr{parts[0], parts[1], parts[2]}, nil
}

func (p *parser) parseArgs() ([]expr, []kwarg, error) {
	if err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	var args []expr
	var kwargs []kwarg
	err := p.parseCommaList(")", func() error {
		if p.cur().kind == tokName && p.peek().kind == tokOp && p.peek().val == "=" {
			name := p.next().val
			p.next()
			v, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			kwargs = append(kwargs, kwarg{name, v})
			return nil
		}
		if p.isOp("*") || p.isOp("**") {
			return p.errf("*args and **kwargs in calls are not supported")
		}
		if len(kwargs) > 0 {
			return p.errf("positional argument after keyword argument")
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return err
		}
		args = append(args, v)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return args, kwargs, nil
}

// parseCommaList parses comma-separated items, a trailing comma allowed,
// through the closing operator.
func (p *parser) parseCommaList(closer string, item func() error) error {
	for n := 0; !p.isOp(closer); n++ {
		if n > 0 {
			if err := p.expectOp(","); err != nil {
				return err
			}
			if p.isOp(closer) {
				break
			}
		}
		if err := item(); err != nil {
			return err
		}
	}
	p.next()
	return nil
}

func (p *parser) parseCall(fn expr) (expr, error) {
	line := p.cur().line
	args, kwargs, err := p.parseArgs()
	if err != nil {
		return nil, err
	}
	return &callExpr{fn, args, kwargs, line}, nil
}

// expectDottedName reads a filter or test name, which may be dotted.
func (p *parser) expectDottedName() (string, error) {
	name, err := p.expectName()
	if err != nil {
		return "", err
	}
	for p.isOp(".") {
		p.next()
		n, err := p.expectName()
		if err != nil {
			return "", err
		}
		name += "." + n
	}
	return name, nil
}

func (p *parser) parseFilter(arg expr) (*filterExpr, error) {
	line := p.cur().line
	name, err := p.expectDottedName()
	if err != nil {
		return nil, err
	}
	f := &filterExpr{arg: arg, name: name, line: line}
	if p.isOp("(") {
		if f.args, f.kwargs, err = p.parseArgs(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *parser) parseFilterExpr(e expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			f, err := p.parseFilter(e)
			if err != nil {
				return nil, err
			}
			e = f
		case p.isName("is"):
			t, err := p.parseTest(e)
			if err != nil {
				return nil, err
			}
			e = t
		case p.isOp("("):
			c, err := p.parseCall(e)
			if err != nil {
				return nil, err
			}
			e = c
		default:
			return e, nil
		}
	}
}

func (p *parser) parseTest(arg expr) (expr, error) {
	line := p.next().line
	negated := false
	if p.isName("not") {
		p.next()
		negated = true
	}
	name, err := p.expectDottedName()
	if err != nil {
		return nil, err
	}
	t := &testExpr{arg: arg, name: name, line: line}
	c := p.cur()
	switch {
	case c.kind == tokOp && c.val == "(":
		if t.args, t.kwargs, err = p.parseArgs(); err != nil {
			return nil, err
		}
	case (c.kind == tokName && c.val != "else" && c.val != "or" && c.val != "and") ||
		c.kind == tokString || c.kind == tokInt || c.kind == tokFloat ||
		(c.kind == tokOp && (c.val == "[" || c.val == "{")):
		if c.kind == tokName && c.val == "is" {
			return nil, p.errf("you cannot chain multiple tests with is")
		}
		a, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if a, err = p.parsePostfix(a); err != nil {
			return nil, err
		}
		t.args = []expr{a}
	}
	if negated {
		return &unaryExpr{"not", t, line}, nil
	}
	return t, nil
}
