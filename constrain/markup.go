package constrain

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// XMLCall is a call to tool name in Qwen3-Coder's markup:
//
//	<tool_call>\n<function=NAME>\n
//	<parameter=KEY>\nVALUE\n</parameter>\n   (each property, in order)
//	</function>\n</tool_call>
//
// with VALUE as chat/toolcall's parser types it by the property's schema:
// a string property's value is bare text (no quotes or escapes, no '<' or
// control characters), any other value JSON (whose strings hold no raw
// '<', so no closing tag can start inside it). params is the arguments'
// object schema.
func XMLCall(name string, params []byte, l Limits) (*Grammar, error) {
	return markupCall(name, params, l, markupForm{format: "qwen3-coder",
		head: "<tool_call>\n<function=" + name + ">\n", key: "<parameter=", value: ">\n", end: "\n</parameter>\n",
		tail: "</function>\n</tool_call>"})
}

// GLMCall is a call to tool name in GLM-4.5's markup:
//
//	<tool_call>NAME\n
//	<arg_key>KEY</arg_key>\n<arg_value>VALUE</arg_value>\n   (each property, in order)
//	</tool_call>
//
// with VALUE as in XMLCall (the parser takes it exactly, so an empty
// string is a value here).
func GLMCall(name string, params []byte, l Limits) (*Grammar, error) {
	return markupCall(name, params, l, markupForm{format: "glm", emptyOK: true,
		head: "<tool_call>" + name + "\n", key: "<arg_key>", value: "</arg_key>\n<arg_value>", end: "</arg_value>\n",
		tail: "</tool_call>"})
}

// markupForm is a tool-call markup that writes arguments as key/value
// tags: head, then key+KEY+value+VALUE+end per argument, then tail.
type markupForm struct {
	format                      string // for errors
	head, key, value, end, tail string
	emptyOK                     bool // an empty string value is told apart from a missing one
}

// markupCall compiles a call in form; names and keys must read back as
// written (no markup characters or spaces).
func markupCall(name string, params []byte, l Limits, form markupForm) (*Grammar, error) {
	if !bareWord(name) {
		return nil, fmt.Errorf("tool name %q cannot be written in %s tool-call markup (spaces, quotes, braces or angle brackets)", name, form.format)
	}
	c := &compiler{limits: l.withDefaults(), refs: map[string]*node{}, closeTag: strings.TrimSpace(form.end)}
	if err := json.Unmarshal(params, &c.root); err != nil {
		return nil, &SchemaError{Keyword: "schema", Reason: "expected a JSON object: " + err.Error()}
	}
	var props map[string]json.RawMessage
	var order, required []string
	if v, ok := c.root["properties"]; ok {
		if json.Unmarshal(v, &props) != nil {
			return nil, &SchemaError{Keyword: "properties", Reason: "expected an object of schemas"}
		}
		order, _ = keyOrder(v)
	}
	if v, ok := c.root["required"]; ok && json.Unmarshal(v, &required) != nil {
		return nil, &SchemaError{Keyword: "required", Reason: "expected an array of property names"}
	}
	for k := range c.root {
		switch k {
		case "type", "properties", "required", "additionalProperties", "$defs", "definitions":
		default:
			if !ignored[k] {
				return nil, &SchemaError{Keyword: k, Reason: "not supported at the top of a " + form.format + " tool's parameters"}
			}
		}
	}
	for _, r := range required {
		if _, ok := props[r]; !ok {
			return nil, &SchemaError{Keyword: "required", Reason: fmt.Sprintf("required property %q has no schema in properties", r)}
		}
	}
	// rest[i]: the parameters from i on, then the closing markup; an
	// optional parameter may be skipped.
	rest := c.literal(form.tail)
	for i := len(order) - 1; i >= 0; i-- {
		k := order[i]
		if !keyWord(k) {
			return nil, &SchemaError{Path: "/properties", Keyword: "properties",
				Reason: fmt.Sprintf("property name %q cannot be written in %s markup (angle brackets, control characters or outer spaces)", k, form.format)}
		}
		val, err := c.xmlValue(props[k], "/properties/"+k, form)
		if err != nil {
			return nil, err
		}
		param := c.newNode(kSeq)
		param.parts = []*node{c.literal(form.key + k + form.value), val, c.literal(form.end), rest}
		if contains(required, k) {
			rest = param
		} else {
			rest = c.anyOf(param, rest)
		}
	}
	root := c.newNode(kSeq)
	root.parts = []*node{c.literal(form.head), rest}
	return &Grammar{root: root, nodes: c.nodes, limits: c.limits}, nil
}

// bareWord reports whether s is a tool name that the markup's parser
// reads back unchanged (chat/toolcall's validName).
func bareWord(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && !strings.ContainsAny(s, " \t\r\n<>\"'{}")
}

// keyWord reports whether s is a property name that the parser reads back
// unchanged between tags: trimmed, and no angle brackets or controls.
func keyWord(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && s == strings.TrimSpace(s) &&
		!strings.ContainsAny(s, "<>") && strings.IndexFunc(s, unicode.IsControl) < 0
}

// xmlValue compiles one parameter's value: bare text for a string
// property, JSON otherwise.
func (c *compiler) xmlValue(raw json.RawMessage, path string, form markupForm) (*node, error) {
	var s map[string]json.RawMessage
	if json.Unmarshal(raw, &s) != nil {
		return c.compile(raw, path)
	}
	for _, k := range []string{"anyOf", "oneOf", "$ref"} {
		if _, ok := s[k]; ok {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "a " + form.format + " tool parameter needs one type (its value is typed by it)"}
		}
	}
	types, err := schemaTypes(s["type"], path)
	if err != nil {
		return nil, err
	}
	var nonNull []string
	for _, t := range types {
		if t != "null" {
			nonNull = append(nonNull, t)
		}
	}
	if len(nonNull) > 1 {
		return nil, &SchemaError{Path: path, Keyword: "type", Reason: "a " + form.format + " tool parameter needs one type (its value is typed by it)"}
	}
	if len(nonNull) == 0 || nonNull[0] != "string" {
		return c.compile(raw, path)
	}
	// A string: its characters bare.
	if v, ok := s["enum"]; ok {
		return c.rawLiterals(v, path, "enum", form)
	}
	if v, ok := s["const"]; ok {
		return c.rawLiterals(json.RawMessage("["+string(v)+"]"), path, "const", form)
	}
	n, err := c.stringSchema(s, path)
	if err != nil {
		return nil, err
	}
	n.raw = true
	for k := range s {
		if !ignored[k] && k != "type" && k != "minLength" && k != "maxLength" && k != "format" {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "not supported for a string parameter"}
		}
	}
	return n, nil
}

func (c *compiler) rawLiterals(v json.RawMessage, path, keyword string, form markupForm) (*node, error) {
	var vals []string
	if json.Unmarshal(v, &vals) != nil || len(vals) == 0 {
		return nil, &SchemaError{Path: path, Keyword: keyword, Reason: "a string parameter's values must be strings"}
	}
	var alts []*node
	for _, s := range vals {
		if s == "" && !form.emptyOK {
			return nil, &SchemaError{Path: path, Keyword: keyword, Reason: "an empty string cannot be told apart from a missing value in " + form.format + " markup"}
		}
		if strings.Contains(s, c.closeTag) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return nil, &SchemaError{Path: path, Keyword: keyword, Reason: fmt.Sprintf("value %q holds %s or a control character, which bare %s markup text cannot", s, c.closeTag, form.format)}
		}
		alts = append(alts, c.literal(s))
	}
	return c.anyOf(alts...), nil
}
