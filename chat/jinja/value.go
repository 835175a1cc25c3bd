package jinja

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Values a template sees are plain Go values standing in for Python's:
// nil (None), bool, int64, float64, string, []any (list), Tuple, *Dict,
// *Namespace, Func, Undefined, and the loop object. Lists and dicts are never
// modified by templates (the sandbox transformers uses forbids it), so values
// may be shared freely.

// Undefined is a missing variable, attribute or item. Like jinja2's default
// Undefined it prints as "", is false, iterates as empty and has length 0;
// anything else done with it fails with Hint.
type Undefined struct{ Hint string }

// Tuple is a Python tuple (printed with parentheses; JSON arrays are lists).
type Tuple []any

// Func is a callable: a global such as range, a bound method, or a macro.
// kwargs is never nil.
type Func func(args []any, kwargs *Dict) (any, error)

// Namespace is the mutable object made by namespace(); {% set ns.x = ... %}
// assigns its attributes.
type Namespace struct{ attrs *Dict }

// Dict is an insertion-ordered mapping, like a Python dict.
type Dict struct {
	keys []any
	vals []any
	idx  map[any]int
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{idx: map[any]int{}} }

// hashKey maps equal Python keys to one Go map key (1, 1.0 and True are the
// same dict key in Python).
func hashKey(k any) any {
	switch v := k.(type) {
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
			return int64(v)
		}
	case Tuple:
		return fmt.Sprintf("tuple:%s", repr(v))
	}
	return k
}

func hashable(k any) bool {
	switch k.(type) {
	case nil, bool, int64, float64, string, Tuple:
		return true
	}
	return false
}

// Set sets key k (a string, number, bool, None or tuple) to v, keeping the
// position of an existing key.
func (d *Dict) Set(k, v any) {
	h := hashKey(k)
	if i, ok := d.idx[h]; ok {
		d.vals[i] = v
		return
	}
	d.idx[h] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// Get returns the value at k.
func (d *Dict) Get(k any) (any, bool) {
	if d == nil || !hashable(k) {
		return nil, false
	}
	i, ok := d.idx[hashKey(k)]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// Len is the number of keys.
func (d *Dict) Len() int {
	if d == nil {
		return 0
	}
	return len(d.keys)
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []any { return d.keys }

// Values returns the values in key order.
func (d *Dict) Values() []any { return d.vals }

func truthy(v any) bool {
	switch x := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case Tuple:
		return len(x) > 0
	case *Dict:
		return x.Len() > 0
	}
	return true
}

// typeName is Python's type(v).__name__, for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case Tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case *Namespace:
		return "Namespace"
	case Func:
		return "function"
	case *loopInfo:
		return "LoopContext"
	case Undefined:
		return "Undefined"
	}
	return fmt.Sprintf("%T", v)
}

// objectRepr is jinja2's object_type_repr, used in undefined hints.
func objectRepr(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case *loopInfo:
		return "jinja2.runtime.LoopContext object"
	case *Namespace:
		return "jinja2.utils.Namespace object"
	}
	return typeName(v) + " object"
}

// String is Python's str(v): how a template prints v.
func String(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Undefined:
		return ""
	}
	var b strings.Builder
	writeRepr(&b, v, false)
	return b.String()
}

func repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v, true)
	return b.String()
}

func writeRepr(b *strings.Builder, v any, quote bool) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(pyFloat(x, false))
	case string:
		if quote {
			writeStrRepr(b, x)
		} else {
			b.WriteString(x)
		}
	case Undefined:
		if quote {
			b.WriteString("Undefined")
		}
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e, true)
		}
		b.WriteByte(']')
	case Tuple:
		b.WriteByte('(')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e, true)
		}
		if len(x) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
	case *Dict:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, k, true)
			b.WriteString(": ")
			writeRepr(b, x.vals[i], true)
		}
		b.WriteByte('}')
	case *Namespace:
		b.WriteString("<Namespace ")
		writeRepr(b, x.attrs, true)
		b.WriteByte('>')
	case *loopInfo:
		fmt.Fprintf(b, "<LoopContext %d/%d>", x.index+1, len(x.items))
	default:
		fmt.Fprintf(b, "<%s>", typeName(v))
	}
}

// pyFloat formats f like Python's repr(float) (json selects Infinity/NaN).
func pyFloat(f float64, json bool) string {
	switch {
	case math.IsNaN(f):
		if json {
			return "NaN"
		}
		return "nan"
	case math.IsInf(f, 1):
		if json {
			return "Infinity"
		}
		return "inf"
	case math.IsInf(f, -1):
		if json {
			return "-Infinity"
		}
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.dddde±XX, shortest round-trip digits
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1
	var s string
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			s = "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			s = digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			s = digits[:decpt] + "." + digits[decpt:]
		}
	} else {
		s = digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		s += fmt.Sprintf("e%s%02d", sign, exp)
	}
	if neg {
		s = "-" + s
	}
	return s
}

// writeStrRepr writes Python's repr of a str.
func writeStrRepr(b *strings.Builder, s string) {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError:
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r)):
			switch {
			case r < 0x100:
				fmt.Fprintf(b, `\x%02x`, r)
			case r < 0x10000:
				fmt.Fprintf(b, `\u%04x`, r)
			default:
				fmt.Fprintf(b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
}

func isNumber(v any) bool {
	switch v.(type) {
	case bool, int64, float64:
		return true
	}
	return false
}

// asFloat converts a number (bool, int or float) to float64.
func asFloat(v any) float64 {
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

// asInt returns an int or bool as int64; ok is false for other values.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case int64:
		return x, true
	}
	return 0, false
}

// equal is Python's ==.
func equal(a, b any) bool {
	if isNumber(a) && isNumber(b) {
		ai, aok := asInt(a)
		bi, bok := asInt(b)
		if aok && bok {
			return ai == bi
		}
		return asFloat(a) == asFloat(b)
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case Undefined:
		_, ok := b.(Undefined)
		return ok
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		return ok && seqEqual(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && seqEqual(x, y)
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, k := range x.keys {
			v, ok := y.Get(k)
			if !ok || !equal(x.vals[i], v) {
				return false
			}
		}
		return true
	case *Namespace:
		return a == b
	case *loopInfo:
		return a == b
	}
	return false
}

func seqEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// less is Python's <, for sorting and comparisons.
func less(a, b any) (bool, error) {
	if isNumber(a) && isNumber(b) {
		ai, aok := asInt(a)
		bi, bok := asInt(b)
		if aok && bok {
			return ai < bi, nil
		}
		return asFloat(a) < asFloat(b), nil
	}
	if u, ok := a.(Undefined); ok {
		return false, undefinedError(u)
	}
	if u, ok := b.(Undefined); ok {
		return false, undefinedError(u)
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x < y, nil // byte order of UTF-8 is code point order
		}
	case []any:
		if y, ok := b.([]any); ok {
			return seqLess(x, y)
		}
	case Tuple:
		if y, ok := b.(Tuple); ok {
			return seqLess(x, y)
		}
	}
	return false, fmt.Errorf("TypeError: '<' not supported between instances of '%s' and '%s'", typeName(a), typeName(b))
}

func seqLess(a, b []any) (bool, error) {
	for i := 0; i < len(a) && i < len(b); i++ {
		if !equal(a[i], b[i]) {
			return less(a[i], b[i])
		}
	}
	return len(a) < len(b), nil
}

func compare(op string, a, b any) (bool, error) {
	switch op {
	case "==":
		return equal(a, b), nil
	case "!=":
		return !equal(a, b), nil
	case "<":
		return less(a, b)
	case ">":
		return less(b, a)
	case "<=":
		l, err := less(b, a)
		return !l && err == nil, err
	case ">=":
		l, err := less(a, b)
		return !l && err == nil, err
	case "in":
		return contains(b, a)
	case "not in":
		c, err := contains(b, a)
		return !c, err
	}
	return false, fmt.Errorf("unknown comparison %q", op)
}

// contains is Python's "item in container".
func contains(container, item any) (bool, error) {
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			if u, isU := item.(Undefined); isU {
				return false, undefinedError(u)
			}
			return false, fmt.Errorf("TypeError: 'in <string>' requires string as left operand, not %s", typeName(item))
		}
		return strings.Contains(c, s), nil
	case []any:
		return seqContains(c, item), nil
	case Tuple:
		return seqContains(c, item), nil
	case *Dict:
		_, ok := c.Get(item)
		return ok, nil
	case Undefined:
		return false, nil
	}
	return false, fmt.Errorf("TypeError: argument of type '%s' is not iterable", typeName(container))
}

func seqContains(s []any, item any) bool {
	for _, e := range s {
		if equal(e, item) {
			return true
		}
	}
	return false
}

// iterate returns the items a for loop over v visits.
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case Tuple:
		return x, nil
	case *Dict:
		return x.keys, nil
	case string:
		out := make([]any, 0, len(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case Undefined:
		return nil, nil
	}
	return nil, fmt.Errorf("TypeError: '%s' object is not iterable", typeName(v))
}

// length is Python's len(v).
func length(v any) (int, error) {
	switch x := v.(type) {
	case string:
		return utf8.RuneCountInString(x), nil
	case []any:
		return len(x), nil
	case Tuple:
		return len(x), nil
	case *Dict:
		return x.Len(), nil
	case Undefined:
		return 0, nil
	}
	return 0, fmt.Errorf("TypeError: object of type '%s' has no len()", typeName(v))
}

func sortValues(items []any, key func(any) any, reverse bool) error {
	var err error
	sort.SliceStable(items, func(i, j int) bool {
		a, b := key(items[i]), key(items[j])
		if reverse {
			a, b = b, a
		}
		l, e := less(a, b)
		if e != nil && err == nil {
			err = e
		}
		return l
	})
	return err
}
