package constrain

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/chat/toolcall"
)

const markupParams = `{"type":"object","properties":{
	"s":{"type":"string","maxLength":10},
	"n":{"type":"integer"},
	"b":{"type":"boolean"},
	"op":{"type":"string","enum":["<=","a b",">"]},
	"obj":{"type":"object","properties":{"note":{"type":"string","maxLength":8}},"required":["note"]},
	"list":{"type":"array","items":{"type":"string","maxLength":4},"maxItems":2},
	"my key":{"type":"number"}},
	"required":["s","op","obj"]}`

// TestMarkupRoundTrip samples calls in each key/value markup with random
// logits over a byte vocabulary (quotes, backslashes, '<', non-ASCII all
// offered) and reads them back with chat/toolcall's parser: every
// argument the markup holds comes back exactly (strings verbatim, JSON
// values equal), and nothing else.
func TestMarkupRoundTrip(t *testing.T) {
	v := byteVocab()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		format        toolcall.Format
		compile       func(string, []byte, Limits) (*Grammar, error)
		open, valueAt string // key tag before KEY, and what follows KEY up to the value
		end           string // what ends a value
	}{
		{toolcall.Qwen3Coder, XMLCall, "<parameter=", ">\n", "\n</parameter>"},
		{toolcall.GLM, GLMCall, "<arg_key>", "</arg_key>\n<arg_value>", "</arg_value>"},
	} {
		g, err := tc.compile("f", []byte(markupParams), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		tools := []toolcall.Tool{{Name: "f", Parameters: json.RawMessage(markupParams)}}
		for range 40 {
			text := sample(t, g, v, rng)
			r := toolcall.Parse(toolcall.Options{Format: tc.format, Tools: tools}, text)
			if len(r.Calls) != 1 || r.Calls[0].Name != "f" || strings.TrimSpace(r.Content) != "" {
				t.Fatalf("%s: %q parsed as %+v", tc.format, text, r)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(r.Calls[0].Arguments), &args); err != nil {
				t.Fatalf("%s: %q: arguments %q: %v", tc.format, text, r.Calls[0].Arguments, err)
			}
			for _, k := range []string{"s", "n", "b", "op", "obj", "list", "my key"} {
				i := strings.Index(text, tc.open+k+tc.valueAt)
				got, ok := args[k]
				if i < 0 {
					if ok {
						t.Fatalf("%s: %q: %s=%v read back, but not written", tc.format, text, k, got)
					}
					continue
				}
				raw := text[i+len(tc.open+k+tc.valueAt):]
				raw = raw[:strings.Index(raw, tc.end)]
				var want any = raw
				if k != "s" && k != "op" {
					if err := json.Unmarshal([]byte(raw), &want); err != nil {
						t.Fatalf("%s: %q: %s=%q is not JSON: %v", tc.format, text, k, raw, err)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: %q: %s read back as %#v, written %#v", tc.format, text, k, got, want)
				}
			}
		}
	}
}

// The GLM form spelled out: the walk over tokens agrees with feeding bytes.
func TestGLMCallWalk(t *testing.T) {
	words := []string{"<", "<tool_call>f\n", "<arg_key>", "n</arg_key>\n<arg_value>", "k</arg_key>\n<arg_value>", "a", "b c", "\"q\\",
		"x<", "\n", "</arg_value>\n", "</tool_call>", "</", "1", "é", "\xc3", "\xa9", "7\n"}
	toks := [][]byte{nil}
	for _, w := range words {
		toks = append(toks, []byte(w))
	}
	v := NewVocabulary(toks, []int{0})
	g, err := GLMCall("f", []byte(`{"type":"object","properties":{"n":{"type":"string","maxLength":6},"k":{"type":"integer"}},"required":["n"]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkWalk(t, g, v, toks, []string{"", "<tool_call>f\n", "<tool_call>f\n<arg_key>n</arg_key>\n<arg_value>", "<tool_call>f\n<arg_key>n</arg_key>\n<arg_value>ab",
		"<tool_call>f\n<arg_key>n</arg_key>\n<arg_value>abcdef", "<tool_call>f\n<arg_key>n</arg_key>\n<arg_value></arg_value>\n",
		"<tool_call>f\n<arg_key>n</arg_key>\n<arg_value>x</arg_value>\n<arg_key>k</arg_key>\n<arg_value>1"})
}

// What markup cannot carry is refused, naming what is wrong; JSON strings
// inside a markup value hold no raw '<'.
func TestMarkupRefusals(t *testing.T) {
	for _, tc := range []struct{ name, params, want string }{
		{"a b", `{"type":"object"}`, "tool name"},
		{"f", `{"type":"object","properties":{"a>b":{"type":"string"}}}`, "property name"},
		{"f", `{"type":"object","properties":{"v":{"type":"string","enum":["x</arg_value>"]}}}`, "</arg_value>"},
		{"f", `{"type":"object","properties":{"v":{"type":"string","enum":["a\nb"]}}}`, "control character"},
		{"f", `{"type":"object","properties":{"v":{"type":"array","items":{"const":"</arg_value>"}}}}`, "</arg_value>"},
		{"f", `{"type":"object","properties":{"v":{"type":["string","integer"]}}}`, "glm tool parameter needs one type"},
	} {
		if _, err := GLMCall(tc.name, []byte(tc.params), Limits{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("GLMCall(%q, %s): %v, want an error naming %s", tc.name, tc.params, err, tc.want)
		}
	}
	g, err := GLMCall("f", []byte(`{"type":"object","properties":{"v":{"type":"array","items":{"type":"string"}}}}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := byteVocab()
	head := "<tool_call>f\n<arg_key>v</arg_key>\n<arg_value>"
	if !accepts(g, v, head+`["a\u003cb"]</arg_value>`+"\n</tool_call>") || accepts(g, v, head+`["a<b"]</arg_value>`+"\n</tool_call>") {
		t.Error("a JSON string inside GLM markup must take \\u003c and refuse a raw '<'")
	}
	// Plain JSON (no markup) keeps '<' in strings.
	plain, err := CompileSchema([]byte(`{"type":"string"}`), Limits{})
	if err != nil || !accepts(plain, v, `"a<b"`) {
		t.Errorf("a JSON string outside markup must take '<': %v", err)
	}
}
