package jinja

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Template is a parsed template; it is safe for concurrent Render calls.
type Template struct {
	body []node
}

// Parse parses template source written for jinja2 with trim_blocks and
// lstrip_blocks (the settings of Hugging Face chat templates).
func Parse(src string) (*Template, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	body, _, err := p.parseBody()
	if err != nil {
		return nil, err
	}
	return &Template{body: body}, nil
}

// RuntimeError is an error raised while rendering, with the template line.
// Err is the cause: an error returned by a Func (such as raise_exception) is
// passed through unchanged so that callers can recover it with errors.As.
type RuntimeError struct {
	Line int
	Err  error
}

func (e *RuntimeError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RuntimeError) Unwrap() error { return e.Err }

// UndefinedError is using an undefined value in a way that needs a value.
type UndefinedError struct{ Hint string }

func (e *UndefinedError) Error() string { return "UndefinedError: " + e.Hint }

func undefinedError(u Undefined) error { return &UndefinedError{u.Hint} }

func at(line int, err error) error {
	var re *RuntimeError
	if err == nil || errors.As(err, &re) {
		return err
	}
	return &RuntimeError{line, err}
}

// scope is one frame of variables: the template's top level, a macro call or
// one for-loop iteration. {% if %} does not open a scope; assignments inside a
// loop body stay in the loop, as in jinja2.
type scope struct {
	vars   map[string]any
	parent *scope
	state  *renderState
}

// renderState is shared by all scopes of one Render call.
type renderState struct {
	macroDepth int
}

// maxMacroDepth stops runaway macro recursion (Python raises RecursionError).
const maxMacroDepth = 200

func (s *scope) child() *scope { return &scope{vars: map[string]any{}, parent: s, state: s.state} }

func (s *scope) lookup(name string) (any, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

type control int

const (
	ctlNone control = iota
	ctlBreak
	ctlContinue
)

// Render renders the template with vars (the caller's values must already be
// template values: see the Value types above and FromJSON).
func (t *Template) Render(vars map[string]any) (string, error) {
	globals := &scope{vars: builtinGlobals(), state: &renderState{}}
	root := globals.child()
	for k, v := range vars {
		root.vars[k] = v
	}
	var b strings.Builder
	if _, err := execBody(t.body, root, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

func execBody(body []node, s *scope, out *strings.Builder) (control, error) {
	for _, n := range body {
		c, err := exec(n, s, out)
		if err != nil || c != ctlNone {
			return c, err
		}
	}
	return ctlNone, nil
}

func exec(n node, s *scope, out *strings.Builder) (control, error) {
	switch n := n.(type) {
	case *textNode:
		out.WriteString(n.text)
	case *outputNode:
		v, err := eval(n.expr, s)
		if err != nil {
			return ctlNone, err
		}
		out.WriteString(String(v))
	case *ifNode:
		for i, cond := range n.conds {
			v, err := eval(cond, s)
			if err != nil {
				return ctlNone, err
			}
			if truthy(v) {
				return execBody(n.bodies[i], s, out)
			}
		}
		if len(n.bodies) > len(n.conds) {
			return execBody(n.bodies[len(n.conds)], s, out)
		}
	case *forNode:
		return ctlNone, execFor(n, s, out)
	case *setNode:
		v, err := eval(n.value, s)
		if err != nil {
			return ctlNone, err
		}
		return ctlNone, assign(n.target, v, s)
	case *setBlockNode:
		var b strings.Builder
		if _, err := execBody(n.body, s, &b); err != nil {
			return ctlNone, err
		}
		v, err := applyFilters(n.filters, b.String(), s)
		if err != nil {
			return ctlNone, err
		}
		return ctlNone, assign(n.target, v, s)
	case *filterBlockNode:
		var b strings.Builder
		if c, err := execBody(n.body, s, &b); err != nil || c != ctlNone {
			return c, err
		}
		v, err := applyFilters(n.filters, b.String(), s)
		if err != nil {
			return ctlNone, err
		}
		out.WriteString(String(v))
	case *withNode:
		ws := s.child()
		for i, target := range n.targets {
			v, err := eval(n.values[i], s) // values see the outer scope, as in jinja2
			if err != nil {
				return ctlNone, err
			}
			if err := assign(target, v, ws); err != nil {
				return ctlNone, err
			}
		}
		return execBody(n.body, ws, out)
	case *macroNode:
		s.vars[n.name] = makeMacro(n, s)
	case *breakNode:
		return ctlBreak, nil
	case *continueNode:
		return ctlContinue, nil
	default:
		return ctlNone, fmt.Errorf("internal error: unknown node %T", n)
	}
	return ctlNone, nil
}

func applyFilters(filters []*filterExpr, v any, s *scope) (any, error) {
	for _, f := range filters {
		var err error
		if v, err = callFilter(f, v, s); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func assign(t assignTarget, v any, s *scope) error {
	if t.attr != "" {
		target, _ := s.lookup(t.names[0])
		ns, ok := target.(*Namespace)
		if !ok {
			return fmt.Errorf("cannot assign attribute on non-namespace object '%s'", t.names[0])
		}
		ns.attrs.Set(t.attr, v)
		return nil
	}
	if !t.tuple {
		s.vars[t.names[0]] = v
		return nil
	}
	items, err := iterate(v)
	if err != nil {
		return err
	}
	if len(items) != len(t.names) {
		return fmt.Errorf("ValueError: expected %d values to unpack, got %d", len(t.names), len(items))
	}
	for i, name := range t.names {
		s.vars[name] = items[i]
	}
	return nil
}

// loopInfo is the "loop" variable inside a for loop.
type loopInfo struct {
	items []any
	index int
}

func (l *loopInfo) attr(name string) (any, bool) {
	n := len(l.items)
	switch name {
	case "index":
		return int64(l.index + 1), true
	case "index0":
		return int64(l.index), true
	case "revindex":
		return int64(n - l.index), true
	case "revindex0":
		return int64(n - l.index - 1), true
	case "first":
		return l.index == 0, true
	case "last":
		return l.index == n-1, true
	case "length":
		return int64(n), true
	case "depth": // loops are never recursive here
		return int64(1), true
	case "depth0":
		return int64(0), true
	case "previtem":
		if l.index == 0 {
			return Undefined{"there is no previous item"}, true
		}
		return l.items[l.index-1], true
	case "nextitem":
		if l.index == n-1 {
			return Undefined{"there is no next item"}, true
		}
		return l.items[l.index+1], true
	case "cycle":
		return Func(func(args []any, _ *Dict) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("TypeError: no items for cycling given")
			}
			return args[l.index%len(args)], nil
		}), true
	}
	return nil, false
}

func execFor(n *forNode, s *scope, out *strings.Builder) error {
	iv, err := eval(n.iter, s)
	if err != nil {
		return err
	}
	items, err := iterate(iv)
	if err != nil {
		return at(n.line, err)
	}
	if n.filter != nil {
		var kept []any
		for _, it := range items {
			fs := s.child()
			if err := assign(n.target, it, fs); err != nil {
				return at(n.line, err)
			}
			ok, err := eval(n.filter, fs)
			if err != nil {
				return err
			}
			if truthy(ok) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		_, err := execBody(n.elseBody, s, out)
		return err
	}
	for i, it := range items {
		is := s.child()
		is.vars["loop"] = &loopInfo{items: items, index: i}
		if err := assign(n.target, it, is); err != nil {
			return at(n.line, err)
		}
		c, err := execBody(n.body, is, out)
		if err != nil {
			return err
		}
		if c == ctlBreak {
			break
		}
	}
	return nil
}

func makeMacro(n *macroNode, def *scope) Func {
	return func(args []any, kwargs *Dict) (any, error) {
		if def.state.macroDepth >= maxMacroDepth {
			return nil, fmt.Errorf("RecursionError: macro '%s' nested more than %d calls deep", n.name, maxMacroDepth)
		}
		def.state.macroDepth++
		defer func() { def.state.macroDepth-- }()
		ms := def.child()
		for i, p := range n.params {
			switch v, ok := kwargs.Get(p); {
			case i < len(args):
				if ok {
					return nil, fmt.Errorf("TypeError: macro '%s' got multiple values for argument '%s'", n.name, p)
				}
				ms.vars[p] = args[i]
			case ok:
				ms.vars[p] = v
			case n.defaults[i] != nil:
				d, err := eval(n.defaults[i], ms)
				if err != nil {
					return nil, err
				}
				ms.vars[p] = d
			default:
				ms.vars[p] = Undefined{fmt.Sprintf("parameter '%s' was not provided", p)}
			}
		}
		var extra []any
		if len(args) > len(n.params) {
			extra = args[len(n.params):]
		}
		ms.vars["varargs"] = Tuple(extra)
		kw := NewDict()
		for i, k := range kwargs.keys {
			if ks, _ := k.(string); !containsStr(n.params, ks) {
				kw.Set(k, kwargs.vals[i])
			}
		}
		ms.vars["kwargs"] = kw
		var b strings.Builder
		if _, err := execBody(n.body, ms, &b); err != nil {
			return nil, err
		}
		return b.String(), nil
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func eval(e expr, s *scope) (any, error) {
	switch e := e.(type) {
	case *constExpr:
		return e.v, nil
	case *nameExpr:
		if v, ok := s.lookup(e.name); ok {
			return v, nil
		}
		return Undefined{fmt.Sprintf("'%s' is undefined", e.name)}, nil
	case *getattrExpr:
		obj, err := eval(e.obj, s)
		if err != nil {
			return nil, err
		}
		v, err := getattr(obj, e.name)
		return v, at(e.line, err)
	case *getitemExpr:
		obj, err := eval(e.obj, s)
		if err != nil {
			return nil, err
		}
		if sl, ok := e.key.(*sliceExpr); ok {
			v, err := evalSlice(obj, sl, s)
			return v, at(e.line, err)
		}
		key, err := eval(e.key, s)
		if err != nil {
			return nil, err
		}
		v, err := getitem(obj, key)
		return v, at(e.line, err)
	case *callExpr:
		fn, err := eval(e.fn, s)
		if err != nil {
			return nil, err
		}
		args, kwargs, err := evalArgs(e.args, e.kwargs, s)
		if err != nil {
			return nil, err
		}
		v, err := call(fn, args, kwargs)
		return v, at(e.line, err)
	case *filterExpr:
		v, err := eval(e.arg, s)
		if err != nil {
			return nil, err
		}
		return callFilter(e, v, s)
	case *testExpr:
		return evalTest(e, s)
	case *binExpr:
		return evalBinary(e, s)
	case *unaryExpr:
		x, err := eval(e.x, s)
		if err != nil {
			return nil, err
		}
		v, err := unary(e.op, x)
		return v, at(e.line, err)
	case *compareExpr:
		l, err := eval(e.first, s)
		if err != nil {
			return nil, err
		}
		for i, op := range e.ops {
			r, err := eval(e.rest[i], s)
			if err != nil {
				return nil, err
			}
			ok, err := compare(op, l, r)
			if err != nil {
				return nil, at(e.line, err)
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *condExpr:
		c, err := eval(e.cond, s)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return eval(e.then, s)
		}
		if e.els == nil {
			return Undefined{"the inline if-expression evaluated to false and no else section was defined"}, nil
		}
		return eval(e.els, s)
	case *listExpr:
		out, err := evalEach(e.items, s)
		if err != nil {
			return nil, err
		}
		return out, nil
	case *tupleExpr:
		out, err := evalEach(e.items, s)
		if err != nil {
			return nil, err
		}
		return Tuple(out), nil
	case *dictExpr:
		d := NewDict()
		for i := range e.keys {
			k, err := eval(e.keys[i], s)
			if err != nil {
				return nil, err
			}
			if !hashable(k) {
				return nil, fmt.Errorf("TypeError: unhashable type: '%s'", typeName(k))
			}
			v, err := eval(e.vals[i], s)
			if err != nil {
				return nil, err
			}
			d.Set(k, v)
		}
		return d, nil
	}
	return nil, fmt.Errorf("internal error: unknown expression %T", e)
}

// evalEach evaluates exprs in order.
func evalEach(exprs []expr, s *scope) ([]any, error) {
	out := make([]any, len(exprs))
	for i, e := range exprs {
		v, err := eval(e, s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func evalArgs(argExprs []expr, kwExprs []kwarg, s *scope) ([]any, *Dict, error) {
	args, err := evalEach(argExprs, s)
	if err != nil {
		return nil, nil, err
	}
	kwargs := NewDict()
	for _, kw := range kwExprs {
		v, err := eval(kw.val, s)
		if err != nil {
			return nil, nil, err
		}
		kwargs.Set(kw.name, v)
	}
	return args, kwargs, nil
}

func call(fn any, args []any, kwargs *Dict) (any, error) {
	switch f := fn.(type) {
	case Func:
		return f(args, kwargs)
	case Undefined:
		return nil, undefinedError(f)
	}
	return nil, fmt.Errorf("TypeError: '%s' object is not callable", typeName(fn))
}

func evalBinary(e *binExpr, s *scope) (any, error) {
	l, err := eval(e.l, s)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "and":
		if !truthy(l) {
			return l, nil
		}
		return eval(e.r, s)
	case "or":
		if truthy(l) {
			return l, nil
		}
		return eval(e.r, s)
	}
	r, err := eval(e.r, s)
	if err != nil {
		return nil, err
	}
	v, err := arith(e.op, l, r)
	return v, at(e.line, err)
}

func unary(op string, x any) (any, error) {
	if op == "not" {
		return !truthy(x), nil
	}
	if u, ok := x.(Undefined); ok {
		return nil, undefinedError(u)
	}
	switch v := x.(type) {
	case bool, int64:
		i, _ := asInt(v)
		if op == "-" {
			return -i, nil
		}
		return i, nil
	case float64:
		if op == "-" {
			return -v, nil
		}
		return v, nil
	}
	return nil, fmt.Errorf("TypeError: bad operand type for unary %s: '%s'", op, typeName(x))
}

// arith implements Python's binary operators and jinja2's "~".
func arith(op string, l, r any) (any, error) {
	if op == "~" {
		return String(l) + String(r), nil
	}
	if u, ok := l.(Undefined); ok {
		return nil, undefinedError(u)
	}
	if u, ok := r.(Undefined); ok {
		return nil, undefinedError(u)
	}
	if isNumber(l) && isNumber(r) {
		return numArith(op, l, r)
	}
	switch op {
	case "+":
		switch x := l.(type) {
		case string:
			if y, ok := r.(string); ok {
				return x + y, nil
			}
			return nil, fmt.Errorf(`TypeError: can only concatenate str (not "%s") to str`, typeName(r))
		case []any:
			if y, ok := r.([]any); ok {
				return append(append(make([]any, 0, len(x)+len(y)), x...), y...), nil
			}
			return nil, fmt.Errorf(`TypeError: can only concatenate list (not "%s") to list`, typeName(r))
		case Tuple:
			if y, ok := r.(Tuple); ok {
				return append(append(make(Tuple, 0, len(x)+len(y)), x...), y...), nil
			}
			return nil, fmt.Errorf(`TypeError: can only concatenate tuple (not "%s") to tuple`, typeName(r))
		}
	case "*":
		if n, ok := asInt(r); ok {
			return repeat(l, n)
		}
		if n, ok := asInt(l); ok {
			return repeat(r, n)
		}
	case "%":
		if f, ok := l.(string); ok {
			return percentFormat(f, r)
		}
	}
	return nil, fmt.Errorf("TypeError: unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(l), typeName(r))
}

// maxRepeat bounds "x" * n, where Python would just run out of memory.
const maxRepeat = 1 << 26

// intPow is base**exp by squaring; results beyond int64 are an error
// (Python would give a big integer).
func intPow(base, exp int64) (any, error) {
	result := int64(1)
	for exp > 0 {
		if exp&1 == 1 {
			r := result * base
			if base != 0 && r/base != result {
				return nil, errors.New("OverflowError: integer power result too large")
			}
			result = r
		}
		exp >>= 1
		if exp > 0 {
			b := base * base
			if base != 0 && b/base != base {
				return nil, errors.New("OverflowError: integer power result too large")
			}
			base = b
		}
	}
	return result, nil
}

func repeat(v any, n int64) (any, error) {
	n = max(n, 0)
	if l, err := length(v); err == nil && n > 0 && int64(l) > maxRepeat/n {
		return nil, errors.New("MemoryError: repeated sequence too large")
	}
	switch x := v.(type) {
	case string:
		return strings.Repeat(x, int(n)), nil
	case []any:
		out := make([]any, 0, len(x)*int(n))
		for range n {
			out = append(out, x...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("TypeError: can't multiply sequence of type '%s'", typeName(v))
}

func numArith(op string, l, r any) (any, error) {
	li, lInt := asInt(l)
	ri, rInt := asInt(r)
	if lInt && rInt {
		switch op {
		case "+":
			return li + ri, nil
		case "-":
			return li - ri, nil
		case "*":
			return li * ri, nil
		case "/":
			if ri == 0 {
				return nil, errors.New("ZeroDivisionError: division by zero")
			}
			return float64(li) / float64(ri), nil
		case "//", "%":
			if ri == 0 {
				return nil, errors.New("ZeroDivisionError: integer division or modulo by zero")
			}
			q, m := li/ri, li%ri
			if m != 0 && (m < 0) != (ri < 0) {
				q--
				m += ri
			}
			if op == "//" {
				return q, nil
			}
			return m, nil
		case "**":
			if ri >= 0 {
				return intPow(li, ri)
			}
			return math.Pow(float64(li), float64(ri)), nil
		}
	}
	a, b := asFloat(l), asFloat(r)
	switch op {
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/":
		if b == 0 {
			return nil, errors.New("ZeroDivisionError: float division by zero")
		}
		return a / b, nil
	case "//", "%":
		if b == 0 {
			return nil, errors.New("ZeroDivisionError: float modulo")
		}
		m := math.Mod(a, b)
		if m != 0 && (m < 0) != (b < 0) {
			m += b
		}
		if op == "//" {
			return math.Floor((a - m) / b), nil
		}
		return m, nil
	case "**":
		return math.Pow(a, b), nil
	}
	return nil, fmt.Errorf("unknown operator %q", op)
}

func evalSlice(obj any, sl *sliceExpr, s *scope) (any, error) {
	var bounds [3]*int64
	for i, e := range []expr{sl.start, sl.stop, sl.step} {
		if e == nil {
			continue
		}
		v, err := eval(e, s)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		n, ok := asInt(v)
		if !ok {
			return nil, fmt.Errorf("TypeError: slice indices must be integers or None, not %s", typeName(v))
		}
		bounds[i] = &n
	}
	var items []any
	var str []rune
	switch x := obj.(type) {
	case []any:
		items = x
	case Tuple:
		items = x
	case string:
		str = []rune(x)
	case Undefined:
		return nil, undefinedError(x)
	default:
		return nil, fmt.Errorf("TypeError: '%s' object is not subscriptable", typeName(obj))
	}
	n := int64(len(items))
	if str != nil {
		n = int64(len(str))
	}
	idx, err := sliceIndices(n, bounds)
	if err != nil {
		return nil, err
	}
	switch obj.(type) {
	case string:
		out := make([]rune, len(idx))
		for i, j := range idx {
			out[i] = str[j]
		}
		return string(out), nil
	case Tuple:
		out := make(Tuple, len(idx))
		for i, j := range idx {
			out[i] = items[j]
		}
		return out, nil
	}
	out := make([]any, len(idx))
	for i, j := range idx {
		out[i] = items[j]
	}
	return out, nil
}

// sliceIndices follows Python's slice.indices.
func sliceIndices(n int64, b [3]*int64) ([]int64, error) {
	step := int64(1)
	if b[2] != nil {
		step = *b[2]
	}
	if step == 0 {
		return nil, errors.New("ValueError: slice step cannot be zero")
	}
	clamp := func(p *int64, def, lo, hi int64) int64 {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
		}
		return min(max(v, lo), hi)
	}
	var start, stop int64
	if step > 0 {
		start, stop = clamp(b[0], 0, 0, n), clamp(b[1], n, 0, n)
	} else {
		start, stop = clamp(b[0], n-1, -1, n-1), clamp(b[1], -1, -1, n-1)
	}
	var idx []int64
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		idx = append(idx, i)
	}
	return idx, nil
}

// getattr is jinja2's environment.getattr: a Python attribute (methods of
// str, dict and list) first, then the item of that name.
func getattr(obj any, name string) (any, error) {
	switch x := obj.(type) {
	case Undefined:
		return nil, undefinedError(x)
	case *loopInfo:
		if v, ok := x.attr(name); ok {
			return v, nil
		}
	case *Namespace:
		if v, ok := x.attrs.Get(name); ok {
			return v, nil
		}
	default:
		if m := method(obj, name); m != nil {
			return m, nil
		}
		if d, ok := obj.(*Dict); ok {
			if v, ok := d.Get(name); ok {
				return v, nil
			}
		}
	}
	return Undefined{fmt.Sprintf("'%s' has no attribute '%s'", objectRepr(obj), name)}, nil
}

// getitem is jinja2's environment.getitem: the item first, then for string
// keys the attribute.
func getitem(obj any, key any) (any, error) {
	switch x := obj.(type) {
	case Undefined:
		return nil, undefinedError(x)
	case *Dict:
		if v, ok := x.Get(key); ok {
			return v, nil
		}
	case []any, Tuple, string:
		if i, ok := asInt(key); ok {
			missing := Undefined{fmt.Sprintf("%s has no element %d", objectRepr(obj), i)}
			var n int64
			switch y := x.(type) {
			case []any:
				n = int64(len(y))
			case Tuple:
				n = int64(len(y))
			case string:
				r := []rune(y)
				if i < 0 {
					i += int64(len(r))
				}
				if i >= 0 && i < int64(len(r)) {
					return string(r[i]), nil
				}
				return missing, nil
			}
			if i < 0 {
				i += n
			}
			if i >= 0 && i < n {
				if l, ok := x.([]any); ok {
					return l[i], nil
				}
				return x.(Tuple)[i], nil
			}
			return missing, nil
		}
	}
	if name, ok := key.(string); ok {
		return getattr(obj, name)
	}
	return Undefined{fmt.Sprintf("%s has no element %s", objectRepr(obj), repr(key))}, nil
}
