package jinja

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// params binds positional and keyword arguments to named parameters, the way
// Python binds a call to a signature; missing parameters get their default.
type params struct {
	fn   string
	args []any
	kw   *Dict
	used int
}

func (p *params) get(i int, name string, def any) any {
	if i < len(p.args) {
		return p.args[i]
	}
	if v, ok := p.kw.Get(name); ok {
		p.used++
		return v
	}
	return def
}

func (p *params) done(n int) error {
	if len(p.args) > n {
		return fmt.Errorf("TypeError: %s() takes at most %d arguments (%d given)", p.fn, n, len(p.args))
	}
	if p.used < p.kw.Len() {
		return fmt.Errorf("TypeError: %s() got an unexpected keyword argument", p.fn)
	}
	return nil
}

func newParams(fn string, args []any, kw *Dict) *params {
	if kw == nil {
		kw = NewDict()
	}
	return &params{fn: fn, args: args, kw: kw}
}

func builtinGlobals() map[string]any {
	return map[string]any{
		"range": Func(func(args []any, kw *Dict) (any, error) {
			var ints []int64
			for _, a := range args {
				n, ok := asInt(a)
				if !ok {
					return nil, fmt.Errorf("TypeError: range() needs integers, got '%s'", typeName(a))
				}
				ints = append(ints, n)
			}
			start, stop, step := int64(0), int64(0), int64(1)
			switch len(ints) {
			case 1:
				stop = ints[0]
			case 2:
				start, stop = ints[0], ints[1]
			case 3:
				start, stop, step = ints[0], ints[1], ints[2]
			default:
				return nil, fmt.Errorf("TypeError: range expected 1 to 3 arguments, got %d", len(ints))
			}
			if step == 0 {
				return nil, errors.New("ValueError: range() arg 3 must not be zero")
			}
			var out []any
			for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
				if len(out) >= 100000 {
					return nil, errors.New("OverflowError: range too big, maximum size for range is 100000")
				}
				out = append(out, i)
			}
			return out, nil
		}),
		"namespace": Func(func(args []any, kw *Dict) (any, error) {
			ns := &Namespace{attrs: NewDict()}
			for _, a := range args {
				d, ok := a.(*Dict)
				if !ok {
					return nil, fmt.Errorf("TypeError: namespace() positional argument must be a dict, not %s", typeName(a))
				}
				for i, k := range d.keys {
					ns.attrs.Set(k, d.vals[i])
				}
			}
			for i, k := range kw.keys {
				ns.attrs.Set(k, kw.vals[i])
			}
			return ns, nil
		}),
		"dict": Func(func(args []any, kw *Dict) (any, error) {
			if len(args) > 0 {
				return nil, errors.New("TypeError: dict() takes keyword arguments only here")
			}
			d := NewDict()
			for i, k := range kw.keys {
				d.Set(k, kw.vals[i])
			}
			return d, nil
		}),
	}
}

// method returns the bound Python method name of obj, or nil. Methods that
// would modify a list or dict are absent, as in jinja2's immutable sandbox.
func method(obj any, name string) Func {
	switch x := obj.(type) {
	case string:
		return strMethod(x, name)
	case *Dict:
		switch name {
		case "items":
			return func(args []any, kw *Dict) (any, error) { return dictItems(x), nil }
		case "keys":
			return func(args []any, kw *Dict) (any, error) { return append([]any(nil), x.keys...), nil }
		case "values":
			return func(args []any, kw *Dict) (any, error) { return append([]any(nil), x.vals...), nil }
		case "get":
			return func(args []any, kw *Dict) (any, error) {
				if len(args) < 1 || len(args) > 2 {
					return nil, fmt.Errorf("TypeError: get expected 1 or 2 arguments, got %d", len(args))
				}
				if v, ok := x.Get(args[0]); ok {
					return v, nil
				}
				if len(args) == 2 {
					return args[1], nil
				}
				return nil, nil
			}
		}
	case []any:
		switch name {
		case "index":
			return func(args []any, kw *Dict) (any, error) {
				for i, e := range x {
					if len(args) > 0 && equal(e, args[0]) {
						return int64(i), nil
					}
				}
				return nil, errors.New("ValueError: value is not in list")
			}
		case "count":
			return func(args []any, kw *Dict) (any, error) {
				n := int64(0)
				for _, e := range x {
					if len(args) > 0 && equal(e, args[0]) {
						n++
					}
				}
				return n, nil
			}
		}
	}
	return nil
}

func dictItems(d *Dict) []any {
	out := make([]any, d.Len())
	for i, k := range d.keys {
		out[i] = Tuple{k, d.vals[i]}
	}
	return out
}

func stripSet(chars any) (func(rune) bool, error) {
	switch c := chars.(type) {
	case nil:
		return pySpace, nil
	case string:
		return func(r rune) bool { return strings.ContainsRune(c, r) }, nil
	}
	return nil, fmt.Errorf("TypeError: strip arg must be None or str, not %s", typeName(chars))
}

func strArg(v any, fn string) (string, error) {
	s, ok := v.(string)
	if !ok {
		if u, isU := v.(Undefined); isU {
			return "", undefinedError(u)
		}
		return "", fmt.Errorf("TypeError: %s() argument must be str, not %s", fn, typeName(v))
	}
	return s, nil
}

func strMethod(s, name string) Func {
	switch name {
	case "strip", "lstrip", "rstrip":
		return func(args []any, kw *Dict) (any, error) {
			p := newParams(name, args, kw)
			set, err := stripSet(p.get(0, "chars", nil))
			if err != nil {
				return nil, err
			}
			if err := p.done(1); err != nil {
				return nil, err
			}
			switch name {
			case "lstrip":
				return strings.TrimLeftFunc(s, set), nil
			case "rstrip":
				return strings.TrimRightFunc(s, set), nil
			}
			return strings.TrimFunc(s, set), nil
		}
	case "split", "rsplit":
		return func(args []any, kw *Dict) (any, error) {
			p := newParams(name, args, kw)
			sep := p.get(0, "sep", nil)
			maxv := p.get(1, "maxsplit", int64(-1))
			if err := p.done(2); err != nil {
				return nil, err
			}
			maxsplit, ok := asInt(maxv)
			if !ok {
				return nil, fmt.Errorf("TypeError: maxsplit must be an integer, not %s", typeName(maxv))
			}
			var parts []string
			if sep == nil {
				parts = splitSpace(s, int(maxsplit), name == "rsplit")
			} else {
				sp, err := strArg(sep, name)
				if err != nil {
					return nil, err
				}
				if sp == "" {
					return nil, errors.New("ValueError: empty separator")
				}
				parts = strings.Split(s, sp)
				if maxsplit >= 0 && len(parts) > int(maxsplit)+1 {
					k := int(maxsplit)
					if name == "rsplit" {
						parts = append([]string{strings.Join(parts[:len(parts)-k], sp)}, parts[len(parts)-k:]...)
					} else {
						parts = append(parts[:k:k], strings.Join(parts[k:], sp))
					}
				}
			}
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return out, nil
		}
	case "startswith", "endswith":
		return func(args []any, kw *Dict) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("TypeError: %s() takes exactly one argument here (%d given)", name, len(args))
			}
			var cands []any
			switch a := args[0].(type) {
			case Tuple:
				cands = a
			case string:
				cands = []any{a}
			default:
				return nil, fmt.Errorf("TypeError: %s first arg must be str or a tuple of str, not %s", name, typeName(args[0]))
			}
			for _, c := range cands {
				cs, err := strArg(c, name)
				if err != nil {
					return nil, err
				}
				if (name == "startswith" && strings.HasPrefix(s, cs)) || (name == "endswith" && strings.HasSuffix(s, cs)) {
					return true, nil
				}
			}
			return false, nil
		}
	case "upper":
		return noArgs(name, func() any { return strings.ToUpper(s) })
	case "lower":
		return noArgs(name, func() any { return strings.ToLower(s) })
	case "title":
		return noArgs(name, func() any { return pyTitle(s) })
	case "capitalize":
		return noArgs(name, func() any { return pyCapitalize(s) })
	case "isdigit", "isnumeric", "isdecimal":
		return noArgs(name, func() any {
			return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) }) < 0
		})
	case "isalpha":
		return noArgs(name, func() any {
			return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) < 0
		})
	case "isspace":
		return noArgs(name, func() any { return s != "" && strings.IndexFunc(s, func(r rune) bool { return !pySpace(r) }) < 0 })
	case "splitlines":
		return noArgs(name, func() any {
			lines := splitLines(s)
			out := make([]any, len(lines))
			for i, l := range lines {
				out[i] = l
			}
			return out
		})
	case "replace":
		return func(args []any, kw *Dict) (any, error) {
			if len(args) < 2 || len(args) > 3 {
				return nil, fmt.Errorf("TypeError: replace expected 2 or 3 arguments, got %d", len(args))
			}
			old, err := strArg(args[0], name)
			if err != nil {
				return nil, err
			}
			nw, err := strArg(args[1], name)
			if err != nil {
				return nil, err
			}
			n := int64(-1)
			if len(args) == 3 {
				var ok bool
				if n, ok = asInt(args[2]); !ok {
					return nil, fmt.Errorf("TypeError: replace count must be an integer")
				}
			}
			return strings.Replace(s, old, nw, int(n)), nil
		}
	case "find", "rfind", "index", "rindex", "count":
		return func(args []any, kw *Dict) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("TypeError: %s() takes exactly one argument here (%d given)", name, len(args))
			}
			sub, err := strArg(args[0], name)
			if err != nil {
				return nil, err
			}
			if name == "count" {
				return int64(strings.Count(s, sub)), nil
			}
			i := strings.Index(s, sub)
			if name == "rfind" || name == "rindex" {
				i = strings.LastIndex(s, sub)
			}
			if i < 0 {
				if name == "index" || name == "rindex" {
					return nil, errors.New("ValueError: substring not found")
				}
				return int64(-1), nil
			}
			return int64(utf8.RuneCountInString(s[:i])), nil
		}
	case "join":
		return func(args []any, kw *Dict) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("TypeError: join() takes exactly one argument (%d given)", len(args))
			}
			items, err := iterate(args[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				if parts[i], err = strArg(it, "join"); err != nil {
					return nil, fmt.Errorf("TypeError: sequence item %d: expected str instance, %s found", i, typeName(it))
				}
			}
			return strings.Join(parts, s), nil
		}
	}
	return nil
}

func noArgs(name string, f func() any) Func {
	return func(args []any, kw *Dict) (any, error) {
		if len(args) > 0 || kw.Len() > 0 {
			return nil, fmt.Errorf("TypeError: %s() takes no arguments", name)
		}
		return f(), nil
	}
}

// splitSpace is str.split() / str.rsplit() without a separator.
func splitSpace(s string, maxsplit int, fromRight bool) []string {
	if !fromRight {
		var out []string
		rest := strings.TrimLeftFunc(s, pySpace)
		for rest != "" {
			if maxsplit >= 0 && len(out) == maxsplit {
				out = append(out, rest)
				break
			}
			i := strings.IndexFunc(rest, pySpace)
			if i < 0 {
				out = append(out, rest)
				break
			}
			out = append(out, rest[:i])
			rest = strings.TrimLeftFunc(rest[i:], pySpace)
		}
		return out
	}
	var rev []string
	rest := strings.TrimRightFunc(s, pySpace)
	for rest != "" {
		if maxsplit >= 0 && len(rev) == maxsplit {
			rev = append(rev, rest)
			break
		}
		i := strings.LastIndexFunc(rest, pySpace)
		if i < 0 {
			rev = append(rev, rest)
			break
		}
		_, n := utf8.DecodeRuneInString(rest[i:])
		rev = append(rev, rest[i+n:])
		rest = strings.TrimRightFunc(rest[:i], pySpace)
	}
	out := make([]string, len(rev))
	for i, p := range rev {
		out[len(rev)-1-i] = p
	}
	return out
}

// splitLines is str.splitlines() (line boundaries as Python defines them).
func splitLines(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		switch r {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			if r == '\n' && i > 0 && s[i-1] == '\r' && i-1 >= start && start == i {
				start = i + 1
				continue
			}
			out = append(out, s[start:i])
			start = i + utf8.RuneLen(r)
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func isCased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(unicode.ToTitle(r))
		}
		prevCased = isCased(r)
	}
	return b.String()
}

func pyCapitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToTitle(r)) + strings.ToLower(s[n:])
}

// percentFormat is Python's "format % args" for the common conversions.
func percentFormat(f string, arg any) (any, error) {
	args := []any{arg}
	if t, ok := arg.(Tuple); ok {
		args = t
	}
	var b strings.Builder
	k := 0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			b.WriteByte(f[i])
			continue
		}
		if i+1 >= len(f) {
			return nil, errors.New("ValueError: incomplete format")
		}
		i++
		c := f[i]
		if c == '%' {
			b.WriteByte('%')
			continue
		}
		if k >= len(args) {
			return nil, errors.New("TypeError: not enough arguments for format string")
		}
		a := args[k]
		k++
		switch c {
		case 's':
			b.WriteString(String(a))
		case 'r':
			b.WriteString(repr(a))
		case 'd', 'i':
			if !isNumber(a) {
				return nil, fmt.Errorf("TypeError: %%%c format: a real number is required, not %s", c, typeName(a))
			}
			b.WriteString(strconv.FormatInt(int64(asFloat(a)), 10))
		default:
			return nil, fmt.Errorf("ValueError: unsupported format character '%c'", c)
		}
	}
	if k < len(args) {
		return nil, errors.New("TypeError: not all arguments converted during string formatting")
	}
	return b.String(), nil
}

func callFilter(f *filterExpr, v any, s *scope) (any, error) {
	args, kw, err := evalArgs(f.args, f.kwargs, s)
	if err != nil {
		return nil, err
	}
	fn, ok := filters[f.name]
	if !ok {
		return nil, &RuntimeError{f.line, fmt.Errorf("no filter named '%s'", f.name)}
	}
	out, err := fn(v, newParams(f.name, args, kw))
	return out, at(f.line, err)
}

type filterFunc func(v any, p *params) (any, error)

var filters map[string]filterFunc

func init() {
	filters = map[string]filterFunc{
		"abs": func(v any, p *params) (any, error) {
			switch x := v.(type) {
			case int64:
				if x < 0 {
					return -x, nil
				}
				return x, nil
			case float64:
				return math.Abs(x), nil
			case bool:
				i, _ := asInt(x)
				return i, nil
			}
			return nil, fmt.Errorf("TypeError: bad operand type for abs(): '%s'", typeName(v))
		},
		"attr": func(v any, p *params) (any, error) {
			name, err := strArg(p.get(0, "name", nil), "attr")
			if err != nil {
				return nil, err
			}
			return getattr(v, name)
		},
		"capitalize": func(v any, p *params) (any, error) { return pyCapitalize(String(v)), nil },
		"default":    filterDefault,
		"d":          filterDefault,
		"dictsort": func(v any, p *params) (any, error) {
			d, ok := v.(*Dict)
			if !ok {
				return nil, fmt.Errorf("TypeError: dictsort expects a mapping, got %s", typeName(v))
			}
			cs := truthy(p.get(0, "case_sensitive", false))
			by := p.get(1, "by", "key")
			rev := truthy(p.get(2, "reverse", false))
			if err := p.done(3); err != nil {
				return nil, err
			}
			pos := 0
			if by == "value" {
				pos = 1
			} else if by != "key" {
				return nil, errors.New("FilterArgumentError: You can only sort by either \"key\" or \"value\"")
			}
			items := dictItems(d)
			err := sortValues(items, func(it any) any { return foldCase(it.(Tuple)[pos], cs) }, rev)
			return items, err
		},
		"escape": filterEscape,
		"e":      filterEscape,
		"first": func(v any, p *params) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			if len(items) == 0 {
				return Undefined{"No first item, sequence was empty."}, nil
			}
			return items[0], nil
		},
		"last": func(v any, p *params) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			if len(items) == 0 {
				return Undefined{"No last item, sequence was empty."}, nil
			}
			return items[len(items)-1], nil
		},
		"float": func(v any, p *params) (any, error) {
			def := p.get(0, "default", 0.0)
			switch x := v.(type) {
			case bool, int64, float64:
				return asFloat(x), nil
			case string:
				if f, err := strconv.ParseFloat(strings.TrimFunc(x, pySpace), 64); err == nil {
					return f, nil
				}
			}
			return def, nil
		},
		"int": func(v any, p *params) (any, error) {
			def := p.get(0, "default", int64(0))
			switch x := v.(type) {
			case bool, int64:
				i, _ := asInt(x)
				return i, nil
			case float64:
				return int64(x), nil
			case string:
				t := strings.ReplaceAll(strings.TrimFunc(x, pySpace), "_", "")
				if i, err := strconv.ParseInt(t, 10, 64); err == nil {
					return i, nil
				}
				if f, err := strconv.ParseFloat(t, 64); err == nil {
					return int64(f), nil
				}
			}
			return def, nil
		},
		"format": func(v any, p *params) (any, error) {
			f, err := strArg(v, "format")
			if err != nil {
				return nil, err
			}
			if len(p.args) == 1 {
				return percentFormat(f, p.args[0])
			}
			return percentFormat(f, Tuple(p.args))
		},
		"indent": func(v any, p *params) (any, error) {
			width := p.get(0, "width", int64(4))
			first := truthy(p.get(1, "first", false))
			blank := truthy(p.get(2, "blank", false))
			if err := p.done(3); err != nil {
				return nil, err
			}
			ind, ok := width.(string)
			if !ok {
				n, isInt := asInt(width)
				if !isInt {
					return nil, fmt.Errorf("TypeError: indent width must be an int or str")
				}
				ind = strings.Repeat(" ", int(max(n, 0)))
			}
			lines := splitLines(String(v) + "\n")
			var out string
			if blank {
				out = strings.Join(lines, "\n"+ind)
			} else if len(lines) > 0 {
				out = lines[0]
				for _, l := range lines[1:] {
					out += "\n"
					if l != "" {
						out += ind + l
					}
				}
			}
			if first {
				out = ind + out
			}
			return out, nil
		},
		"items": func(v any, p *params) (any, error) {
			switch x := v.(type) {
			case Undefined:
				return []any{}, nil
			case *Dict:
				return dictItems(x), nil
			}
			return nil, errors.New("TypeError: Can only get item pairs from a mapping")
		},
		"join": func(v any, p *params) (any, error) {
			sep := String(p.get(0, "d", ""))
			attr := p.get(1, "attribute", nil)
			if err := p.done(2); err != nil {
				return nil, err
			}
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				if attr != nil {
					if it, err = getattrPath(it, attr); err != nil {
						return nil, err
					}
				}
				parts[i] = String(it)
			}
			return strings.Join(parts, sep), nil
		},
		"length": filterLength,
		"count":  filterLength,
		"list": func(v any, p *params) (any, error) {
			items, err := iterate(v)
			return append([]any{}, items...), err
		},
		"lower": func(v any, p *params) (any, error) { return strings.ToLower(String(v)), nil },
		"upper": func(v any, p *params) (any, error) { return strings.ToUpper(String(v)), nil },
		"title": func(v any, p *params) (any, error) { return pyTitle(String(v)), nil },
		"map": func(v any, p *params) (any, error) {
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(items))
			if attr, ok := p.kw.Get("attribute"); ok {
				def, hasDef := p.kw.Get("default")
				for i, it := range items {
					if out[i], err = getattrPath(it, attr); err != nil {
						return nil, err
					}
					if _, undef := out[i].(Undefined); undef && hasDef {
						out[i] = def
					}
				}
				return out, nil
			}
			if len(p.args) == 0 {
				return nil, errors.New("map requires a filter name or attribute=")
			}
			name, err := strArg(p.args[0], "map")
			if err != nil {
				return nil, err
			}
			fn, ok := filters[name]
			if !ok {
				return nil, fmt.Errorf("no filter named '%s'", name)
			}
			for i, it := range items {
				if out[i], err = fn(it, newParams(name, p.args[1:], p.kw)); err != nil {
					return nil, err
				}
			}
			return out, nil
		},
		"max": func(v any, p *params) (any, error) { return minMax(v, p, true) },
		"min": func(v any, p *params) (any, error) { return minMax(v, p, false) },
		"replace": func(v any, p *params) (any, error) {
			old := String(p.get(0, "old", ""))
			nw := String(p.get(1, "new", ""))
			count := p.get(2, "count", nil)
			n := int64(-1)
			if count != nil {
				var ok bool
				if n, ok = asInt(count); !ok {
					return nil, errors.New("TypeError: replace count must be an integer")
				}
			}
			return strings.Replace(String(v), old, nw, int(n)), nil
		},
		"reverse": func(v any, p *params) (any, error) {
			if s, ok := v.(string); ok {
				r := []rune(s)
				for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
					r[i], r[j] = r[j], r[i]
				}
				return string(r), nil
			}
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(items))
			for i, it := range items {
				out[len(items)-1-i] = it
			}
			return out, nil
		},
		"round": func(v any, p *params) (any, error) {
			prec, _ := asInt(p.get(0, "precision", int64(0)))
			meth := p.get(1, "method", "common")
			if !isNumber(v) {
				return nil, fmt.Errorf("TypeError: round expects a number, got %s", typeName(v))
			}
			f, scale := asFloat(v), math.Pow(10, float64(prec))
			switch meth {
			case "common": // Python's round(): half to even on the exact binary value
				if prec < 0 {
					return math.RoundToEven(f/math.Pow(10, float64(-prec))) * math.Pow(10, float64(-prec)), nil
				}
				r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', int(prec), 64), 64)
				return r, nil
			case "floor":
				return math.Floor(f*scale) / scale, nil
			case "ceil":
				return math.Ceil(f*scale) / scale, nil
			}
			return nil, errors.New("FilterArgumentError: method must be common, ceil or floor")
		},
		"safe":       func(v any, p *params) (any, error) { return v, nil },
		"select":     func(v any, p *params) (any, error) { return selectItems(v, p, false, true) },
		"reject":     func(v any, p *params) (any, error) { return selectItems(v, p, false, false) },
		"selectattr": func(v any, p *params) (any, error) { return selectItems(v, p, true, true) },
		"rejectattr": func(v any, p *params) (any, error) { return selectItems(v, p, true, false) },
		"sort": func(v any, p *params) (any, error) {
			rev := truthy(p.get(0, "reverse", false))
			cs := truthy(p.get(1, "case_sensitive", false))
			attr := p.get(2, "attribute", nil)
			if err := p.done(3); err != nil {
				return nil, err
			}
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			items = append([]any{}, items...)
			var keyErr error
			err = sortValues(items, func(it any) any {
				if attr != nil {
					var e error
					if it, e = getattrPath(it, attr); e != nil && keyErr == nil {
						keyErr = e
					}
				}
				return foldCase(it, cs)
			}, rev)
			if keyErr != nil {
				return nil, keyErr
			}
			return items, err
		},
		"string": func(v any, p *params) (any, error) { return String(v), nil },
		"sum": func(v any, p *params) (any, error) {
			attr := p.get(0, "attribute", nil)
			total := p.get(1, "start", int64(0))
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				if attr != nil {
					if it, err = getattrPath(it, attr); err != nil {
						return nil, err
					}
				}
				if total, err = arith("+", total, it); err != nil {
					return nil, err
				}
			}
			return total, nil
		},
		"tojson": func(v any, p *params) (any, error) {
			opts := JSONOptions{EnsureASCII: truthy(p.get(0, "ensure_ascii", false))}
			indent := p.get(1, "indent", nil)
			switch x := indent.(type) {
			case nil:
			case string:
				opts.Indent = &x
			default:
				n, ok := asInt(x)
				if !ok {
					return nil, fmt.Errorf("TypeError: tojson indent must be an int or str, not %s", typeName(indent))
				}
				s := strings.Repeat(" ", int(max(n, 0)))
				opts.Indent = &s
			}
			if sep := p.get(2, "separators", nil); sep != nil {
				items, err := iterate(sep)
				if err != nil || len(items) != 2 {
					return nil, errors.New("ValueError: tojson separators must be a pair of strings")
				}
				opts.ItemSep, opts.KeySep = String(items[0]), String(items[1])
			}
			opts.SortKeys = truthy(p.get(3, "sort_keys", false))
			if err := p.done(4); err != nil {
				return nil, err
			}
			return ToJSON(v, opts)
		},
		"trim": func(v any, p *params) (any, error) {
			set, err := stripSet(p.get(0, "chars", nil))
			if err != nil {
				return nil, err
			}
			return strings.TrimFunc(String(v), set), nil
		},
		"unique": func(v any, p *params) (any, error) {
			cs := truthy(p.get(0, "case_sensitive", false))
			attr := p.get(1, "attribute", nil)
			items, err := iterate(v)
			if err != nil {
				return nil, err
			}
			var out, seen []any
			for _, it := range items {
				k := it
				if attr != nil {
					if k, err = getattrPath(it, attr); err != nil {
						return nil, err
					}
				}
				k = foldCase(k, cs)
				if !seqContains(seen, k) {
					seen = append(seen, k)
					out = append(out, it)
				}
			}
			return out, nil
		},
		"wordcount": func(v any, p *params) (any, error) {
			return int64(len(strings.FieldsFunc(String(v), func(r rune) bool {
				return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_')
			}))), nil
		},
	}
}

func filterDefault(v any, p *params) (any, error) {
	def := p.get(0, "default_value", "")
	boolean := truthy(p.get(1, "boolean", false))
	if err := p.done(2); err != nil {
		return nil, err
	}
	if _, ok := v.(Undefined); ok || (boolean && !truthy(v)) {
		return def, nil
	}
	return v, nil
}

func filterEscape(v any, p *params) (any, error) {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(String(v)), nil
}

func filterLength(v any, p *params) (any, error) {
	n, err := length(v)
	return int64(n), err
}

func foldCase(v any, caseSensitive bool) any {
	if s, ok := v.(string); ok && !caseSensitive {
		return strings.ToLower(s)
	}
	return v
}

// getattrPath resolves jinja2's attribute= argument: dotted names, with
// integer parts used as indexes.
func getattrPath(v any, attr any) (any, error) {
	if n, ok := attr.(int64); ok {
		return getitem(v, n)
	}
	for _, part := range strings.Split(String(attr), ".") {
		var err error
		if n, e := strconv.Atoi(part); e == nil {
			v, err = getitem(v, int64(n))
		} else {
			v, err = getitem(v, part)
		}
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

func minMax(v any, p *params, wantMax bool) (any, error) {
	cs := truthy(p.get(0, "case_sensitive", false))
	attr := p.get(1, "attribute", nil)
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{"No aggregated item, sequence was empty."}, nil
	}
	key := func(it any) (any, error) {
		if attr != nil {
			if it, err = getattrPath(it, attr); err != nil {
				return nil, err
			}
		}
		return foldCase(it, cs), nil
	}
	best := items[0]
	bk, err := key(best)
	if err != nil {
		return nil, err
	}
	for _, it := range items[1:] {
		k, err := key(it)
		if err != nil {
			return nil, err
		}
		a, b := bk, k
		if !wantMax {
			a, b = k, bk
		}
		l, err := less(a, b)
		if err != nil {
			return nil, err
		}
		if l {
			best, bk = it, k
		}
	}
	return best, nil
}

func selectItems(v any, p *params, byAttr, want bool) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	args := p.args
	var attr any
	if byAttr {
		if len(args) == 0 {
			return nil, errors.New("TypeError: selectattr/rejectattr need an attribute name")
		}
		attr, args = args[0], args[1:]
	}
	var test testFunc
	var testArgs []any
	if len(args) > 0 {
		name, err := strArg(args[0], "select")
		if err != nil {
			return nil, err
		}
		var ok bool
		if test, ok = tests[name]; !ok {
			return nil, fmt.Errorf("no test named '%s'", name)
		}
		testArgs = args[1:]
	}
	var out []any
	for _, it := range items {
		x := it
		if byAttr {
			if x, err = getattrPath(it, attr); err != nil {
				return nil, err
			}
		}
		ok := truthy(x)
		if test != nil {
			if ok, err = test(x, testArgs); err != nil {
				return nil, err
			}
		}
		if ok == want {
			out = append(out, it)
		}
	}
	return out, nil
}

type testFunc func(v any, args []any) (bool, error)

var tests map[string]testFunc

func init() {
	cmp := func(op string) testFunc {
		return func(v any, args []any) (bool, error) {
			if len(args) != 1 {
				return false, fmt.Errorf("TypeError: test needs one argument, got %d", len(args))
			}
			return compare(op, v, args[0])
		}
	}
	tests = map[string]testFunc{
		"defined":   func(v any, _ []any) (bool, error) { _, u := v.(Undefined); return !u, nil },
		"undefined": func(v any, _ []any) (bool, error) { _, u := v.(Undefined); return u, nil },
		"none":      func(v any, _ []any) (bool, error) { return v == nil, nil },
		"boolean":   func(v any, _ []any) (bool, error) { _, ok := v.(bool); return ok, nil },
		"true":      func(v any, _ []any) (bool, error) { return v == true, nil },
		"false":     func(v any, _ []any) (bool, error) { return v == false, nil },
		"string":    func(v any, _ []any) (bool, error) { _, ok := v.(string); return ok, nil },
		"number":    func(v any, _ []any) (bool, error) { return isNumber(v), nil },
		"integer":   func(v any, _ []any) (bool, error) { _, ok := v.(int64); return ok, nil },
		"float":     func(v any, _ []any) (bool, error) { _, ok := v.(float64); return ok, nil },
		"mapping":   func(v any, _ []any) (bool, error) { _, ok := v.(*Dict); return ok, nil },
		"callable":  func(v any, _ []any) (bool, error) { _, ok := v.(Func); return ok, nil },
		"iterable": func(v any, _ []any) (bool, error) {
			switch v.(type) {
			case string, []any, Tuple, *Dict, Undefined:
				return true, nil
			}
			return false, nil
		},
		"sequence": func(v any, _ []any) (bool, error) {
			switch v.(type) {
			case string, []any, Tuple, *Dict, Undefined:
				return true, nil
			}
			return false, nil
		},
		"sameas": func(v any, args []any) (bool, error) {
			if len(args) != 1 {
				return false, errors.New("TypeError: sameas needs one argument")
			}
			switch a := args[0].(type) {
			case nil, bool:
				return v == a, nil
			}
			return equal(v, args[0]) && typeName(v) == typeName(args[0]), nil
		},
		"odd": func(v any, _ []any) (bool, error) {
			n, ok := v.(int64)
			if !ok {
				return false, fmt.Errorf("TypeError: odd expects an integer, got %s", typeName(v))
			}
			return n%2 != 0, nil
		},
		"even": func(v any, _ []any) (bool, error) {
			n, ok := v.(int64)
			if !ok {
				return false, fmt.Errorf("TypeError: even expects an integer, got %s", typeName(v))
			}
			return n%2 == 0, nil
		},
		"divisibleby": func(v any, args []any) (bool, error) {
			if len(args) != 1 {
				return false, errors.New("TypeError: divisibleby needs one argument")
			}
			m, err := numArith("%", v, args[0])
			if err != nil {
				return false, err
			}
			return asFloat(m) == 0, nil
		},
		"lower": func(v any, _ []any) (bool, error) { s := String(v); return strings.ToLower(s) == s, nil },
		"upper": func(v any, _ []any) (bool, error) { s := String(v); return strings.ToUpper(s) == s, nil },
		"in": func(v any, args []any) (bool, error) {
			if len(args) != 1 {
				return false, errors.New("TypeError: in needs one argument")
			}
			return contains(args[0], v)
		},
		"eq": cmp("=="), "equalto": cmp("=="), "==": cmp("=="),
		"ne": cmp("!="), "!=": cmp("!="),
		"lt": cmp("<"), "lessthan": cmp("<"), "<": cmp("<"),
		"le": cmp("<="), "<=": cmp("<="),
		"gt": cmp(">"), "greaterthan": cmp(">"), ">": cmp(">"),
		"ge": cmp(">="), ">=": cmp(">="),
		"filter": func(v any, _ []any) (bool, error) { _, ok := filters[String(v)]; return ok, nil },
		"test":   func(v any, _ []any) (bool, error) { _, ok := tests[String(v)]; return ok, nil },
	}
}

func evalTest(e *testExpr, s *scope) (any, error) {
	v, err := eval(e.arg, s)
	if err != nil {
		return nil, err
	}
	args, kw, err := evalArgs(e.args, e.kwargs, s)
	if err != nil {
		return nil, err
	}
	if kw.Len() > 0 {
		return nil, &RuntimeError{e.line, fmt.Errorf("test '%s' takes no keyword arguments", e.name)}
	}
	t, ok := tests[e.name]
	if !ok {
		return nil, &RuntimeError{e.line, fmt.Errorf("no test named '%s'", e.name)}
	}
	r, err := t(v, args)
	return r, at(e.line, err)
}
