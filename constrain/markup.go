package constrain

import (
	"encoding/json"
	"fmt"
)

// XMLCall is a call to tool name in Qwen3-Coder's markup:
//
//	<tool_call>\n<function=NAME>\n
//	<parameter=KEY>\nVALUE\n</parameter>\n   (each property, in order)
//	</function>\n</tool_call>
//
// with VALUE as chat/toolcall's parser types it by the property's schema:
// a string property's value is bare text (no quotes or escapes, no '<' or
// control characters), any other value JSON. params is the arguments'
// object schema.
func XMLCall(name string, params []byte, l Limits) (*Grammar, error) {
	c := &compiler{limits: l.withDefaults(), refs: map[string]*node{}}
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
				return nil, &SchemaError{Keyword: k, Reason: "not supported at the top of a qwen3-coder tool's parameters"}
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
	rest := c.literal("</function>\n</tool_call>")
	for i := len(order) - 1; i >= 0; i-- {
		k := order[i]
		val, err := c.xmlValue(props[k], "/properties/"+k)
		if err != nil {
			return nil, err
		}
		param := c.newNode(kSeq)
		param.parts = []*node{c.literal("<parameter=" + k + ">\n"), val, c.literal("\n</parameter>\n"), rest}
		if contains(required, k) {
			rest = param
		} else {
			rest = c.anyOf(param, rest)
		}
	}
	root := c.newNode(kSeq)
	root.parts = []*node{c.literal("<tool_call>\n<function=" + name + ">\n"), rest}
	return &Grammar{root: root, nodes: c.nodes, limits: c.limits}, nil
}

// xmlValue compiles one parameter's value: bare text for a string
// property, JSON otherwise.
func (c *compiler) xmlValue(raw json.RawMessage, path string) (*node, error) {
	var s map[string]json.RawMessage
	if json.Unmarshal(raw, &s) != nil {
		return c.compile(raw, path)
	}
	for _, k := range []string{"anyOf", "oneOf", "$ref"} {
		if _, ok := s[k]; ok {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "a qwen3-coder tool parameter needs one type (its value is typed by it)"}
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
		return nil, &SchemaError{Path: path, Keyword: "type", Reason: "a qwen3-coder tool parameter needs one type (its value is typed by it)"}
	}
	if len(nonNull) == 0 || nonNull[0] != "string" {
		return c.compile(raw, path)
	}
	// A string: its characters bare.
	if v, ok := s["enum"]; ok {
		return c.rawLiterals(v, path, "enum")
	}
	if v, ok := s["const"]; ok {
		return c.rawLiterals(json.RawMessage("["+string(v)+"]"), path, "const")
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

func (c *compiler) rawLiterals(v json.RawMessage, path, keyword string) (*node, error) {
	var vals []string
	if json.Unmarshal(v, &vals) != nil || len(vals) == 0 {
		return nil, &SchemaError{Path: path, Keyword: keyword, Reason: "a string parameter's values must be strings"}
	}
	var alts []*node
	for _, s := range vals {
		if s == "" {
			return nil, &SchemaError{Path: path, Keyword: keyword, Reason: "an empty string cannot be told apart from a missing value in qwen3-coder markup"}
		}
		alts = append(alts, c.literal(s))
	}
	return c.anyOf(alts...), nil
}
