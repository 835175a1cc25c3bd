// Package constrain makes a model's output follow a JSON Schema by masking
// the logits at each decoding step (structured output, forced tool calls).
//
// A schema (or plain "any JSON object") compiles to a Grammar: a graph of
// nodes that a byte-level pushdown matcher walks. A Vocabulary holds every
// token's bytes in a trie; a Constraint (one per generation) advances the
// matcher by each sampled token and, before each step, walks the trie from
// the current matcher state to find the tokens that keep the output a valid
// prefix. Masks are cached by matcher state, so a generation pays the walk
// once per distinct state (string contents, which repeat one state for
// many tokens, take a precomputed fast path).
//
// The output is compact JSON (no whitespace between tokens), object
// properties in the schema's order, and bounded: strings, arrays, free-form
// objects and nesting have caps (Limits), and with Constraint.Budget set the
// output always closes within that many tokens, so a model that never stops
// still finishes its JSON. Every output is valid against the schema; schema
// keywords the matcher cannot enforce are refused by CompileSchema with a
// SchemaError naming the keyword, never silently ignored. Wrap, Choice,
// XMLCall (Qwen3-Coder) and GLMCall put a schema inside a model's tool-call
// markup.
//
//	vocab := constrain.NewVocabulary(tokenBytes, eosIDs) // once per model
//	g, err := constrain.CompileSchema(schemaJSON, constrain.Limits{})
//	c := constrain.New(g, vocab)                         // one per generation
//	c.Budget = maxTokens
//	c.Mask(generatedIDs, logits)                         // before each sampling step
package constrain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
)

type kind uint8

const (
	kLiteral kind = iota // exact bytes
	kString              // a JSON string
	kNumber              // a JSON number (or integer)
	kObject              // an object: declared properties in order, or free keys
	kArray
	kAnyOf // one of alts (expanded when the value starts)
	kSeq   // parts in order (markup around JSON)
)

// node is one compiled schema element. Nodes form a graph ($ref may cycle).
type node struct {
	id    int
	short int // the shortest complete text, in bytes (budget.go)
	kind  kind
	lit   string  // kLiteral
	alts  []*node // kAnyOf
	// kString: character bounds; format, when set, is one byte class per
	// character (the string is exactly that long).
	minLen, maxLen int
	format         []string
	raw            bool // kString without quotes or escapes (markup argument text)
	noLT           bool // kString with no raw '<' (JSON inside markup)
	integer        bool // kNumber
	nonNeg         bool // kNumber: no minus sign
	positive       bool // kNumber (integer): no zero either
	// kObject: props in order; free (no declared properties) allows any
	// keys with values of extra, up to maxItems entries.
	props []prop
	extra *node
	keys  *node // free objects: the key strings
	free  bool
	// kArray (items) and free objects: entry bounds.
	items              *node
	minItems, maxItems int
	parts              []*node // kSeq
}

type prop struct {
	key      string // the key as JSON text, quotes included
	val      *node
	required bool
}

// Limits bound what a generation may write where the schema does not.
// Zero fields take the defaults.
type Limits struct {
	MaxString int // characters in a string without maxLength (default 256)
	MaxItems  int // entries in an array or free object without maxItems (default 16)
	MaxDepth  int // nesting of objects and arrays (default 12)
}

func (l Limits) withDefaults() Limits {
	if l.MaxString <= 0 {
		l.MaxString = 256
	}
	if l.MaxItems <= 0 {
		l.MaxItems = 16
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 12
	}
	return l
}

// Grammar is a compiled constraint: a schema, optionally inside literal
// markup (a tool call). It is immutable and safe to share.
type Grammar struct {
	root   *node
	nodes  int
	limits Limits
}

// SchemaError says which schema keyword cannot be enforced (or is malformed)
// and where.
type SchemaError struct {
	Path    string // JSON pointer of the schema element, "" for the root
	Keyword string
	Reason  string
}

func (e *SchemaError) Error() string {
	where := e.Path
	if where == "" {
		where = "the schema root"
	}
	return fmt.Sprintf("JSON schema keyword %q at %s: %s", e.Keyword, where, e.Reason)
}

// ignored keywords annotate a schema and do not constrain values.
var ignored = map[string]bool{"title": true, "description": true, "default": true, "examples": true,
	"$schema": true, "$id": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true}

// formats are the string formats enforced, as one byte class per
// character. Dates keep to days 01-28 and months 01-09, 10-12 so that every
// output is a real date.
var formats = map[string][]string{
	"date":      dateClasses,
	"time":      timeClasses,
	"date-time": append(append(append([]string{}, dateClasses...), "T"), timeClasses...),
	"uuid":      uuidClasses(),
}

const digits = "0123456789"

var dateClasses = []string{"12", digits, digits, digits, "-", "0", "123456789", "-", "012", "12345678"}
var timeClasses = []string{"01", digits, ":", "012345", digits, ":", "012345", digits, "Z"}

func uuidClasses() []string {
	var out []string
	for i, n := range []int{8, 4, 4, 4, 12} {
		if i > 0 {
			out = append(out, "-")
		}
		for range n {
			out = append(out, "0123456789abcdef")
		}
	}
	return out
}

type compiler struct {
	limits Limits
	root   map[string]json.RawMessage // the document, for $ref
	refs   map[string]*node
	nodes  int
	// closeTag, inside tool-call markup, is the tag that ends an argument
	// value: JSON strings then hold no raw '<' (the model escapes it as
	// \u003c) and literals never hold the tag, so the parser finds the
	// value's end where the grammar put it.
	closeTag string
}

// CompileSchema compiles a JSON Schema for the whole output.
func CompileSchema(schema []byte, l Limits) (*Grammar, error) {
	c, n, err := compileValue(schema, l)
	if err != nil {
		return nil, err
	}
	return &Grammar{root: n, nodes: c.nodes, limits: c.limits}, nil
}

// JSONObject is the grammar of json_object mode: any JSON object.
func JSONObject(l Limits) *Grammar {
	c := &compiler{limits: l.withDefaults()}
	v := c.anyValue()
	return &Grammar{root: c.freeObject(v), nodes: c.nodes, limits: c.limits}
}

func compileValue(schema []byte, l Limits) (*compiler, *node, error) {
	c := &compiler{limits: l.withDefaults(), refs: map[string]*node{}}
	if err := json.Unmarshal(schema, &c.root); err != nil {
		return nil, nil, &SchemaError{Keyword: "schema", Reason: "expected a JSON object: " + err.Error()}
	}
	n, err := c.compile(schema, "")
	return c, n, err
}

// nodeIDs numbers nodes across grammars, so that state keys of combined
// grammars never collide.
var nodeIDs atomic.Int64

func (c *compiler) newNode(k kind) *node {
	c.nodes++
	return &node{id: int(nodeIDs.Add(1)), kind: k}
}

func (c *compiler) literal(s string) *node {
	n := c.newNode(kLiteral)
	n.lit = s
	return n
}

func (c *compiler) anyOf(alts ...*node) *node {
	if len(alts) == 1 {
		return alts[0]
	}
	n := c.newNode(kAnyOf)
	n.alts = alts
	return n
}

func (c *compiler) str(minLen, maxLen int) *node {
	n := c.newNode(kString)
	n.minLen, n.maxLen = minLen, maxLen
	n.noLT = c.closeTag != ""
	return n
}

// inMarkup refuses a literal that would end a markup argument early.
func (c *compiler) inMarkup(lit, path, keyword string) error {
	if c.closeTag != "" && strings.Contains(lit, c.closeTag) {
		return &SchemaError{Path: path, Keyword: keyword, Reason: fmt.Sprintf("%s holds %s, which ends a tool-call argument", lit, c.closeTag)}
	}
	return nil
}

func (c *compiler) number(integer bool) *node {
	n := c.newNode(kNumber)
	n.integer = integer
	return n
}

func (c *compiler) freeObject(values *node) *node {
	n := c.newNode(kObject)
	n.free, n.extra, n.maxItems = true, values, c.limits.MaxItems
	n.keys = c.str(0, 64)
	return n
}

func (c *compiler) array(items *node, minItems, maxItems int) *node {
	n := c.newNode(kArray)
	n.items, n.minItems, n.maxItems = items, minItems, maxItems
	return n
}

// anyValue is any JSON value (json_object mode, schemas without a type).
func (c *compiler) anyValue() *node {
	v := c.newNode(kAnyOf)
	v.alts = []*node{c.freeObject(v), c.array(v, 0, c.limits.MaxItems), c.str(0, c.limits.MaxString),
		c.number(false), c.literal("true"), c.literal("false"), c.literal("null")}
	return v
}

func (c *compiler) compile(raw json.RawMessage, path string) (*node, error) {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "true", "{}":
		return c.anyValue(), nil
	case "false":
		return nil, &SchemaError{Path: path, Keyword: "false", Reason: "a schema that accepts nothing cannot be generated"}
	}
	var s map[string]json.RawMessage
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, &SchemaError{Path: path, Keyword: "schema", Reason: "expected an object or a boolean"}
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !ignored[k] && !known[k] {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "not supported by constrained decoding (supported: " + supportedList() + ")"}
		}
	}
	if ref, ok := s["$ref"]; ok {
		if len(s) > 1 {
			for k := range s {
				if k != "$ref" && k != "$defs" && k != "definitions" && !ignored[k] {
					return nil, &SchemaError{Path: path, Keyword: k, Reason: "keywords beside $ref are not supported"}
				}
			}
		}
		return c.ref(ref, path)
	}
	if v, ok := s["const"]; ok {
		return c.literals(json.RawMessage("["+string(v)+"]"), s, path, "const")
	}
	if v, ok := s["enum"]; ok {
		return c.literals(v, s, path, "enum")
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		v, ok := s[k]
		if !ok {
			continue
		}
		if _, typed := s["type"]; typed {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "type beside " + k + " is not supported; put the type in each branch"}
		}
		var branches []json.RawMessage
		if json.Unmarshal(v, &branches) != nil || len(branches) == 0 {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "expected a non-empty array of schemas"}
		}
		var alts []*node
		for i, b := range branches {
			n, err := c.compile(b, fmt.Sprintf("%s/%s/%d", path, k, i))
			if err != nil {
				return nil, err
			}
			alts = append(alts, n)
		}
		if k == "oneOf" && !disjoint(branches) {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "oneOf branches must be told apart by type or by a required const/enum property; use anyOf if matching several is acceptable"}
		}
		return c.anyOf(alts...), nil
	}
	types, err := schemaTypes(s["type"], path)
	if err != nil {
		return nil, err
	}
	if s["nullable"] != nil && string(s["nullable"]) == "true" {
		types = append(types, "null")
	}
	if len(types) == 0 {
		types = inferTypes(s)
	}
	if len(types) == 0 {
		return c.anyValue(), nil
	}
	var alts []*node
	for _, t := range types {
		n, err := c.typed(t, s, path)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	return c.anyOf(alts...), nil
}

// literals compiles const (as a one-value list) or enum: the values, as
// compact JSON, that also have the schema's type when it gives one.
func (c *compiler) literals(raw json.RawMessage, s map[string]json.RawMessage, path, keyword string) (*node, error) {
	var vals []json.RawMessage
	if json.Unmarshal(raw, &vals) != nil || len(vals) == 0 {
		return nil, &SchemaError{Path: path, Keyword: keyword, Reason: "expected a non-empty array"}
	}
	types, err := schemaTypes(s["type"], path)
	if err != nil {
		return nil, err
	}
	var alts []*node
	for _, v := range vals {
		lit, err := canonical(v)
		if err != nil {
			return nil, &SchemaError{Path: path, Keyword: keyword, Reason: err.Error()}
		}
		if err := c.inMarkup(lit, path, keyword); err != nil {
			return nil, err
		}
		if len(types) == 0 || typeMatches(types, v) {
			alts = append(alts, c.literal(lit))
		}
	}
	if len(alts) == 0 {
		return nil, &SchemaError{Path: path, Keyword: keyword, Reason: "no value has the schema's type"}
	}
	return c.anyOf(alts...), nil
}

// valueType is a JSON value's type name.
func valueType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return ""
	case v[0] == '"':
		return "string"
	case v[0] == '{':
		return "object"
	case v[0] == '[':
		return "array"
	case v[0] == 't' || v[0] == 'f':
		return "boolean"
	case v[0] == 'n':
		return "null"
	}
	return "number"
}

// typeMatches reports whether value v has one of types.
func typeMatches(types []string, v json.RawMessage) bool {
	t := valueType(v)
	for _, want := range types {
		if want == t || want == "integer" && t == "number" && isInteger(v) {
			return true
		}
	}
	return false
}

func isInteger(v json.RawMessage) bool {
	var f float64
	return json.Unmarshal(v, &f) == nil && f == float64(int64(f))
}

// known are the constraining keywords that are enforced.
var known = map[string]bool{"type": true, "properties": true, "required": true, "additionalProperties": true,
	"enum": true, "const": true, "items": true, "minItems": true, "maxItems": true, "anyOf": true, "oneOf": true,
	"$ref": true, "$defs": true, "definitions": true, "format": true, "minLength": true, "maxLength": true,
	"nullable": true, "minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true}

func supportedList() string {
	var ks []string
	for k := range known {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func schemaTypes(raw json.RawMessage, path string) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, nil
	}
	return nil, &SchemaError{Path: path, Keyword: "type", Reason: "expected a type name or an array of them"}
}

// inferTypes reads the type of a schema that leaves it out from the
// keywords it uses.
func inferTypes(s map[string]json.RawMessage) []string {
	switch {
	case s["properties"] != nil || s["required"] != nil || s["additionalProperties"] != nil:
		return []string{"object"}
	case s["items"] != nil || s["minItems"] != nil || s["maxItems"] != nil:
		return []string{"array"}
	case s["minLength"] != nil || s["maxLength"] != nil || s["format"] != nil:
		return []string{"string"}
	}
	return nil
}

func (c *compiler) typed(t string, s map[string]json.RawMessage, path string) (*node, error) {
	switch t {
	case "null":
		return c.literal("null"), nil
	case "boolean":
		return c.anyOf(c.literal("true"), c.literal("false")), nil
	case "integer", "number":
		return c.numberSchema(s, t == "integer", path)
	case "string":
		return c.stringSchema(s, path)
	case "array":
		return c.arraySchema(s, path)
	case "object":
		return c.objectSchema(s, path)
	}
	return nil, &SchemaError{Path: path, Keyword: "type", Reason: fmt.Sprintf("unknown type %q", t)}
}

func intKeyword(s map[string]json.RawMessage, k, path string, def int) (int, error) {
	v, ok := s[k]
	if !ok {
		return def, nil
	}
	var n int
	if json.Unmarshal(v, &n) != nil || n < 0 {
		return 0, &SchemaError{Path: path, Keyword: k, Reason: "expected a non-negative integer"}
	}
	return n, nil
}

// numberSchema reads numeric bounds. Generated numbers have at most 15
// integer digits, so bounds beyond that range hold already (zod, for one,
// sends the safe-integer range); a lower bound of 0 (or, for integers, 1)
// is enforced by leaving out the sign (and zero). Other bounds are refused.
func (c *compiler) numberSchema(s map[string]json.RawMessage, integer bool, path string) (*node, error) {
	n := c.number(integer)
	const far = 1e15 // every generated number is inside (-far, far)
	for _, k := range []string{"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"} {
		raw, ok := s[k]
		if !ok {
			continue
		}
		var v float64
		if json.Unmarshal(raw, &v) != nil {
			return nil, &SchemaError{Path: path, Keyword: k, Reason: "expected a number (the draft-4 boolean form is not supported)"}
		}
		exclusive := strings.HasPrefix(k, "exclusive")
		switch {
		case strings.HasSuffix(k, "aximum") && v >= far:
		case strings.HasSuffix(k, "inimum") && v <= -far:
		case k == "minimum" && v == 0:
			n.nonNeg = true
		case integer && (k == "minimum" && v == 1 || k == "exclusiveMinimum" && v == 0):
			n.nonNeg, n.positive = true, true
		default:
			what := "at least"
			if exclusive {
				what = "above"
			}
			if strings.HasSuffix(k, "aximum") {
				what = "at most"
				if exclusive {
					what = "below"
				}
			}
			return nil, &SchemaError{Path: path, Keyword: k, Reason: fmt.Sprintf("%s %g cannot be enforced (supported: minimum 0, integer minimum 1 or exclusiveMinimum 0, and bounds beyond ±1e15)", what, v)}
		}
	}
	return n, nil
}

func (c *compiler) stringSchema(s map[string]json.RawMessage, path string) (*node, error) {
	if f, ok := s["format"]; ok {
		var name string
		json.Unmarshal(f, &name)
		classes, ok := formats[name]
		if !ok {
			return nil, &SchemaError{Path: path, Keyword: "format", Reason: fmt.Sprintf("format %q is not supported (supported: date, time, date-time, uuid)", name)}
		}
		n := c.str(len(classes), len(classes))
		n.format = classes
		return n, nil
	}
	lo, hi, err := bounds(s, "minLength", "maxLength", path, c.limits.MaxString)
	if err != nil {
		return nil, err
	}
	return c.str(lo, hi), nil
}

// bounds reads a pair of length keywords; an absent maximum is the limit
// (or the minimum, when that is larger).
func bounds(s map[string]json.RawMessage, minKey, maxKey, path string, limit int) (int, int, error) {
	lo, err := intKeyword(s, minKey, path, 0)
	if err != nil {
		return 0, 0, err
	}
	hi, err := intKeyword(s, maxKey, path, max(lo, limit))
	if err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, &SchemaError{Path: path, Keyword: maxKey, Reason: maxKey + " is below " + minKey}
	}
	return lo, hi, nil
}

func (c *compiler) arraySchema(s map[string]json.RawMessage, path string) (*node, error) {
	lo, hi, err := bounds(s, "minItems", "maxItems", path, c.limits.MaxItems)
	if err != nil {
		return nil, err
	}
	items := c.anyValue()
	if v, ok := s["items"]; ok {
		if items, err = c.compile(v, path+"/items"); err != nil {
			return nil, err
		}
	}
	return c.array(items, lo, hi), nil
}

func (c *compiler) objectSchema(s map[string]json.RawMessage, path string) (*node, error) {
	var props map[string]json.RawMessage
	var order []string
	if v, ok := s["properties"]; ok {
		if json.Unmarshal(v, &props) != nil {
			return nil, &SchemaError{Path: path, Keyword: "properties", Reason: "expected an object of schemas"}
		}
		var err error
		if order, err = keyOrder(v); err != nil {
			return nil, &SchemaError{Path: path, Keyword: "properties", Reason: err.Error()}
		}
	}
	var required []string
	if v, ok := s["required"]; ok && json.Unmarshal(v, &required) != nil {
		return nil, &SchemaError{Path: path, Keyword: "required", Reason: "expected an array of property names"}
	}
	extra := s["additionalProperties"]
	closed := string(bytes.TrimSpace(extra)) == "false"
	for _, r := range required {
		if _, ok := props[r]; !ok {
			if closed || len(props) > 0 {
				return nil, &SchemaError{Path: path, Keyword: "required", Reason: fmt.Sprintf("required property %q has no schema in properties", r)}
			}
		}
	}
	if len(props) == 0 {
		if closed {
			return c.literal("{}"), nil
		}
		if len(required) > 0 {
			return nil, &SchemaError{Path: path, Keyword: "required", Reason: "required properties need schemas in properties"}
		}
		values := c.anyValue()
		if extra != nil && !closed && string(bytes.TrimSpace(extra)) != "true" {
			var err error
			if values, err = c.compile(extra, path+"/additionalProperties"); err != nil {
				return nil, err
			}
		}
		return c.freeObject(values), nil
	}
	// With declared properties only those are written (stricter than an
	// open schema, which every such output still satisfies).
	n := c.newNode(kObject)
	for _, k := range order {
		val, err := c.compile(props[k], path+"/properties/"+k)
		if err != nil {
			return nil, err
		}
		key, _ := canonical(mustJSON(k))
		if err := c.inMarkup(key, path, "properties"); err != nil {
			return nil, err
		}
		n.props = append(n.props, prop{key: key, val: val, required: contains(required, k)})
	}
	return n, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// keyOrder lists an object's keys in document order.
func keyOrder(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// canonical is a JSON value's compact text, object keys in their order and
// without HTML escaping: the one spelling generated for const and enum.
func canonical(v json.RawMessage) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (c *compiler) ref(raw json.RawMessage, path string) (*node, error) {
	var ref string
	if json.Unmarshal(raw, &ref) != nil {
		return nil, &SchemaError{Path: path, Keyword: "$ref", Reason: "expected a string"}
	}
	if n, ok := c.refs[ref]; ok {
		return n, nil
	}
	target, ok := c.resolve(ref)
	if !ok {
		return nil, &SchemaError{Path: path, Keyword: "$ref", Reason: fmt.Sprintf("%q does not resolve (only local references #, #/$defs/NAME and #/definitions/NAME)", ref)}
	}
	// A placeholder anyOf stands for the target while it compiles, so
	// recursive schemas close into a cycle.
	n := c.newNode(kAnyOf)
	c.refs[ref] = n
	body, err := c.compile(target, strings.TrimPrefix(ref, "#"))
	if err != nil {
		return nil, err
	}
	n.alts = []*node{body}
	return n, nil
}

func (c *compiler) resolve(ref string) (json.RawMessage, bool) {
	if ref == "#" {
		return mustJSON(c.root), true
	}
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 || parts[0] != "$defs" && parts[0] != "definitions" {
		return nil, false
	}
	var defs map[string]json.RawMessage
	if json.Unmarshal(c.root[parts[0]], &defs) != nil {
		return nil, false
	}
	name := strings.ReplaceAll(strings.ReplaceAll(parts[1], "~1", "/"), "~0", "~")
	v, ok := defs[name]
	return v, ok
}

// disjoint reports whether no value can match two oneOf branches, by a
// cheap sufficient test: the branches' types differ, or they are objects
// with a common required property whose const/enum values differ.
func disjoint(branches []json.RawMessage) bool {
	type info struct {
		types  []string
		values []string            // const/enum branches: the values
		tags   map[string][]string // required property -> allowed literal values
	}
	infos := make([]info, len(branches))
	for i, b := range branches {
		var s struct {
			Type       json.RawMessage            `json:"type"`
			Const      json.RawMessage            `json:"const"`
			Enum       []json.RawMessage          `json:"enum"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		if json.Unmarshal(b, &s) != nil {
			return false
		}
		infos[i].types, _ = schemaTypes(s.Type, "")
		if s.Const != nil || s.Enum != nil {
			infos[i].types = nil
			for _, v := range append(s.Enum, s.Const) {
				if v != nil {
					lit, _ := canonical(v)
					infos[i].values = append(infos[i].values, lit)
					infos[i].types = append(infos[i].types, valueType(v))
				}
			}
		}
		infos[i].tags = map[string][]string{}
		for _, r := range s.Required {
			var p struct {
				Const json.RawMessage   `json:"const"`
				Enum  []json.RawMessage `json:"enum"`
			}
			if json.Unmarshal(s.Properties[r], &p) != nil {
				continue
			}
			var vals []string
			if p.Const != nil {
				v, _ := canonical(p.Const)
				vals = append(vals, v)
			}
			for _, e := range p.Enum {
				v, _ := canonical(e)
				vals = append(vals, v)
			}
			if len(vals) > 0 {
				infos[i].tags[r] = vals
			}
		}
	}
	for i := range infos {
		for j := i + 1; j < len(infos); j++ {
			a, b := infos[i], infos[j]
			if len(a.types) == 0 || len(b.types) == 0 {
				return false
			}
			if !overlap(a.types, b.types) {
				continue
			}
			if a.values != nil && b.values != nil && !overlap(a.values, b.values) {
				continue
			}
			told := false
			for k, av := range a.tags {
				if bv, ok := b.tags[k]; ok && !overlap(av, bv) {
					told = true
				}
			}
			if !told {
				return false
			}
		}
	}
	return true
}

func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y || x == "number" && y == "integer" || x == "integer" && y == "number" {
				return true
			}
		}
	}
	return false
}

// Wrap is g written between the literal texts prefix and suffix (a tool
// call's markup around its arguments).
func Wrap(prefix string, g *Grammar, suffix string) *Grammar {
	c := &compiler{limits: g.limits}
	n := c.newNode(kSeq)
	if prefix != "" {
		n.parts = append(n.parts, c.literal(prefix))
	}
	n.parts = append(n.parts, g.root)
	if suffix != "" {
		n.parts = append(n.parts, c.literal(suffix))
	}
	return &Grammar{root: n, nodes: g.nodes + c.nodes, limits: g.limits}
}

// Choice matches any one of gs (a call to any of several tools).
func Choice(gs ...*Grammar) *Grammar {
	c := &compiler{limits: gs[0].limits}
	var alts []*node
	nodes := 0
	for _, g := range gs {
		alts = append(alts, g.root)
		nodes += g.nodes
	}
	return &Grammar{root: c.anyOf(alts...), nodes: nodes + c.nodes, limits: gs[0].limits}
}
