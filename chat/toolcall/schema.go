package toolcall

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Tool is a function the request offered: its name and the JSON schema of
// its arguments (an object schema with "properties"; may be empty).
type Tool struct {
	Name       string
	Parameters json.RawMessage
}

// schema maps tool name -> parameter name -> JSON type, for the formats that
// write argument values as bare text.
type schema map[string]map[string]string

func newSchema(tools []Tool) schema {
	s := schema{}
	for _, t := range tools {
		var obj struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		types := map[string]string{}
		if json.Unmarshal(t.Parameters, &obj) == nil {
			for k, v := range obj.Properties {
				types[k] = jsonType(v)
			}
		}
		s[t.Name] = types
	}
	return s
}

// jsonType reads a property schema's type: "type" as a string or a list
// (the first that is not "null"), else the first typed anyOf/oneOf branch.
func jsonType(prop json.RawMessage) string {
	var p struct {
		Type  json.RawMessage   `json:"type"`
		AnyOf []json.RawMessage `json:"anyOf"`
		OneOf []json.RawMessage `json:"oneOf"`
	}
	if json.Unmarshal(prop, &p) != nil {
		return ""
	}
	var one string
	if json.Unmarshal(p.Type, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(p.Type, &many) == nil {
		for _, t := range many {
			if t != "null" {
				return t
			}
		}
	}
	for _, b := range append(p.AnyOf, p.OneOf...) {
		if t := jsonType(b); t != "" && t != "null" {
			return t
		}
	}
	return ""
}

func (s schema) typeOf(tool, param string) string { return s[tool][param] }

// typedValue turns a bare argument value into JSON, typed by the schema;
// values that do not fit their type stay strings. With no type, valid JSON
// is kept as it is and anything else is a string.
func typedValue(v, typ string) string {
	t := strings.TrimSpace(v)
	switch typ {
	case "string":
		return quote(v)
	case "integer", "number":
		if _, err := strconv.ParseFloat(t, 64); err == nil && json.Valid([]byte(t)) {
			return t
		}
	case "boolean":
		if l := strings.ToLower(t); l == "true" || l == "false" {
			return l
		}
	case "null":
		if t == "null" || t == "None" {
			return "null"
		}
	default: // object, array, or unknown
		var b bytes.Buffer
		shapeOK := (typ != "object" || strings.HasPrefix(t, "{")) && (typ != "array" || strings.HasPrefix(t, "["))
		if t != "" && shapeOK && json.Compact(&b, []byte(t)) == nil {
			return b.String()
		}
	}
	return quote(v)
}

// quote is s as a JSON string.
func quote(s string) string { return `"` + escape(s) + `"` }

// escape is s JSON-escaped, without quotes; <, > and & stay as they are.
func escape(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(s) // a string always encodes
	out := b.Bytes()
	return string(out[1 : len(out)-2]) // drop the quotes and Encode's newline
}
