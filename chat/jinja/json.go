package jinja

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// JSONOptions are the arguments of Python's json.dumps that templates use.
type JSONOptions struct {
	EnsureASCII bool
	Indent      *string // nil: one line
	SortKeys    bool
	// ItemSep and KeySep are json.dumps' separators; empty means its
	// defaults (", " and ": ", or "," and ": " with an indent).
	ItemSep, KeySep string
}

// ToJSON is json.dumps(v, ...): key order is kept, floats print as Python
// prints them (1.0 stays 1.0) and nothing is HTML-escaped.
func ToJSON(v any, opts JSONOptions) (string, error) {
	if opts.ItemSep == "" && opts.KeySep == "" {
		opts.ItemSep, opts.KeySep = ", ", ": "
		if opts.Indent != nil {
			opts.ItemSep = ","
		}
	}
	var b strings.Builder
	if err := writeJSON(&b, v, opts, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *strings.Builder, v any, o JSONOptions, level int) error {
	newline := func(l int) {
		if o.Indent != nil {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(*o.Indent, l))
		}
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(pyFloat(x, true))
	case string:
		writeJSONString(b, x, o.EnsureASCII)
	case []any, Tuple:
		items, _ := iterate(x)
		if len(items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteString(o.ItemSep)
			}
			newline(level + 1)
			if err := writeJSON(b, it, o, level+1); err != nil {
				return err
			}
		}
		newline(level)
		b.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		order := make([]int, x.Len())
		for i := range order {
			order[i] = i
		}
		if o.SortKeys {
			var err error
			sort.SliceStable(order, func(i, j int) bool {
				l, e := less(x.keys[order[i]], x.keys[order[j]])
				if e != nil && err == nil {
					err = e
				}
				return l
			})
			if err != nil {
				return err
			}
		}
		b.WriteByte('{')
		for n, i := range order {
			if n > 0 {
				b.WriteString(o.ItemSep)
			}
			newline(level + 1)
			var key string
			switch k := x.keys[i].(type) {
			case string:
				key = k
			case nil, bool, int64, float64:
				key = strings.Trim(mustJSON(k), `"`)
			default:
				return fmt.Errorf("TypeError: keys must be str, int, float, bool or None, not %s", typeName(k))
			}
			writeJSONString(b, key, o.EnsureASCII)
			b.WriteString(o.KeySep)
			if err := writeJSON(b, x.vals[i], o, level+1); err != nil {
				return err
			}
		}
		newline(level)
		b.WriteByte('}')
	default:
		return fmt.Errorf("TypeError: Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

func mustJSON(v any) string {
	var b strings.Builder
	_ = writeJSON(&b, v, JSONOptions{}, 0)
	return b.String()
}

func writeJSONString(b *strings.Builder, s string, ensureASCII bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(b, `\u%04x`, r)
			case ensureASCII && r > 0x7e:
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// FromJSON decodes JSON into template values as Python's json.loads does:
// objects become *Dict in document order, integers int64, other numbers
// float64 (so 1.0 stays a float).
func FromJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := t.(type) {
	case json.Delim:
		switch x {
		case '[':
			out := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token()
			return out, err
		case '{':
			d := NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				d.Set(kt.(string), v)
			}
			_, err := dec.Token()
			return d, err
		}
		return nil, fmt.Errorf("unexpected %v", x)
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %s", s)
		}
		return f, nil
	}
	return t, nil // string, bool or nil
}
