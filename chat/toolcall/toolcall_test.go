package toolcall

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

var tools = []Tool{
	{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{
		"city":{"type":"string"},"days":{"type":"integer"},"metric":{"type":["boolean","null"]},
		"opts":{"type":"object"},"tags":{"anyOf":[{"type":"null"},{"type":"array"}]}}}`)},
	{Name: "write_file", Parameters: json.RawMessage(`{"type":"object","properties":{
		"path":{"type":"string"},"content":{"type":"string"}}}`)},
	{Name: "now"},
}

type parseCase struct {
	name   string
	opts   Options
	output string
	want   Result // Raw is not compared here
}

var cases = []parseCase{
	{
		name:   "qwen3 think, text and call",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "<think>\nThe user wants weather.\n</think>\n\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris <FR>\", \"days\": 3}}\n</tool_call>",
		want: Result{Reasoning: "The user wants weather.", Content: "Let me check.",
			Calls: []Call{{Name: "get_weather", Arguments: `{"city": "Paris <FR>", "days": 3}`}}},
	},
	{
		name:   "qwen3 two calls, nested arguments",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"opts\": {\"a\": [1, {\"b\": \"}\"}]}}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>",
		want: Result{Calls: []Call{
			{Name: "get_weather", Arguments: `{"opts": {"a": [1, {"b": "}"}]}}`},
			{Name: "now", Arguments: `{}`}}},
	},
	{
		name:   "qwen3 keys in another order",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "<tool_call>{\"arguments\": {\"city\": \"Oslo\"}, \"name\": \"get_weather\"}</tool_call> done",
		want:   Result{Content: " done", Calls: []Call{{Name: "get_weather", Arguments: `{"city": "Oslo"}`}}},
	},
	{
		name:   "qwen3 arguments as a string",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Rome\\\"}\"}\n</tool_call>",
		want:   Result{Calls: []Call{{Name: "get_weather", Arguments: `{"city": "Rome"}`}}},
	},
	{
		name:   "qwen3 malformed call is text",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "Hi\n<tool_call>\nnot json\n</tool_call> after",
		want:   Result{Content: "Hi<tool_call>\nnot json\n</tool_call> after"},
	},
	{
		name:   "qwen3 unfinished head is text",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "ok <tool_call>\n{\"na",
		want:   Result{Content: "ok <tool_call>\n{\"na"},
	},
	{
		name:   "qwen3 truncated arguments keep the call",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par",
		want:   Result{Calls: []Call{{Name: "get_weather", Arguments: `{"city": "Par`}}},
	},
	{
		name:   "no tools: markup is text",
		opts:   Options{Format: Qwen3},
		output: "<tool_call>\n{\"name\": \"x\"}\n</tool_call>",
		want:   Result{Content: "<tool_call>\n{\"name\": \"x\"}\n</tool_call>"},
	},
	{
		name:   "prompt opened think",
		opts:   Options{Format: Qwen3, InThinking: true},
		output: "\nHmm, 2+2.\n\n</think>\n\nIt is 4 (a < b, x <th).\n",
		want:   Result{Reasoning: "Hmm, 2+2.", Content: "It is 4 (a < b, x <th)."},
	},
	{
		name:   "partial tag at the end is text",
		opts:   Options{Format: Qwen3, Tools: tools},
		output: "a <b> <tool_ca",
		want:   Result{Content: "a <b> <tool_ca"},
	},
	{
		name: "qwen3-coder typed parameters",
		opts: Options{Format: Qwen3Coder, Tools: tools},
		output: "I will write it.\n<tool_call>\n<function=write_file>\n<parameter=path>\n/tmp/a.py\n</parameter>\n" +
			"<parameter=content>\ndef f():\n    return \"<x>\\n\" # é\n\n</parameter>\n</function>\n</tool_call>\n" +
			"<tool_call>\n<function=get_weather>\n<parameter=city>\nSão Paulo\n</parameter>\n<parameter=days>\n3\n</parameter>\n" +
			"<parameter=metric>\nTrue\n</parameter>\n<parameter=opts>\n{\"a\": [1, 2]}\n</parameter>\n<parameter=tags>\nnot a list\n</parameter>\n" +
			"<parameter=extra>\n7\n</parameter>\n</function>\n</tool_call>",
		want: Result{Content: "I will write it.", Calls: []Call{
			{Name: "write_file", Arguments: `{"path": "/tmp/a.py", "content": "def f():\n    return \"<x>\\n\" # é\n"}`},
			{Name: "get_weather", Arguments: `{"city": "São Paulo", "days": 3, "metric": true, "opts": {"a":[1,2]}, "tags": "not a list", "extra": 7}`},
		}},
	},
	{
		name:   "qwen3-coder malformed head is text",
		opts:   Options{Format: Qwen3Coder, Tools: tools},
		output: "<tool_call>\n<func>x</func>\n</tool_call>",
		want:   Result{Content: "<tool_call>\n<func>x</func>\n</tool_call>"},
	},
	{
		name:   "qwen3-coder truncated string value",
		opts:   Options{Format: Qwen3Coder, Tools: tools},
		output: "<tool_call>\n<function=write_file>\n<parameter=content>\nline1\nli",
		want:   Result{Calls: []Call{{Name: "write_file", Arguments: `{"content": "line1\nli"}`}}},
	},
	{
		name: "glm",
		opts: Options{Format: GLM, Tools: tools},
		output: "<think>plan</think>Checking.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n" +
			"<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n<arg_key>tags</arg_key>\n<arg_value>[\"a\"]</arg_value>\n</tool_call>" +
			"<tool_call>now\n</tool_call>",
		want: Result{Reasoning: "plan", Content: "Checking.", Calls: []Call{
			{Name: "get_weather", Arguments: `{"city": "Paris", "days": 3, "tags": ["a"]}`},
			{Name: "now", Arguments: `{}`},
		}},
	},
	{
		name:   "glm malformed name is text",
		opts:   Options{Format: GLM, Tools: tools},
		output: "<tool_call>two words\n</tool_call>",
		want:   Result{Content: "<tool_call>two words\n</tool_call>"},
	},
	{
		name: "deepseek v3",
		opts: Options{Format: DeepSeekV3, Tools: tools},
		output: "Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\", \"note\": \"```x```\"}\n```<｜tool▁call▁end｜>\n" +
			"<｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
		want: Result{Content: "Sure.", Calls: []Call{
			{Name: "get_weather", Arguments: `{"city": "Paris", "note": "` + "```x```" + `"}`},
			{Name: "now", Arguments: `{}`},
		}},
	},
	{
		name:   "deepseek v3.1 form",
		opts:   Options{Format: DeepSeekV3, Tools: tools},
		output: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Oslo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>Done.",
		want:   Result{Content: "Done.", Calls: []Call{{Name: "get_weather", Arguments: `{"city": "Oslo"}`}}},
	},
	{
		name:   "deepseek malformed section is text",
		opts:   Options{Format: DeepSeekV3, Tools: tools},
		output: "<｜tool▁calls▁begin｜>oops",
		want:   Result{Content: "<｜tool▁calls▁begin｜>oops"},
	},
}

func withoutRaw(r Result) Result {
	out := r
	out.Calls = nil
	for _, c := range r.Calls {
		c.Raw = ""
		out.Calls = append(out.Calls, c)
	}
	return out
}

func feed(o Options, pieces ...string) (Result, []Event) {
	p := NewParser(o)
	var r Result
	var all []Event
	for _, s := range pieces {
		all = append(all, p.Feed(s)...)
	}
	all = append(all, p.Close()...)
	for _, e := range all {
		r.Add(e)
	}
	return r, all
}

func TestParse(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Parse(c.opts, c.output)
			if !reflect.DeepEqual(withoutRaw(got), c.want) {
				t.Fatalf("Parse:\n got %#v\nwant %#v", withoutRaw(got), c.want)
			}
			for _, call := range got.Calls {
				if !json.Valid([]byte(call.Arguments)) && !strings.Contains(c.name, "truncated") {
					t.Errorf("call %s: arguments are not JSON: %s", call.Name, call.Arguments)
				}
				if !strings.Contains(c.output, call.Raw) || call.Raw == "" {
					t.Errorf("call %s: Raw %q is not the markup from the output", call.Name, call.Raw)
				}
			}
		})
	}
}

// Streaming split at any byte (and byte by byte) yields what a single
// Feed does, and never shows markup in text.
func TestSplitsMatchWhole(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			whole := Parse(c.opts, c.output)
			for i := 0; i <= len(c.output); i++ {
				got, events := feed(c.opts, c.output[:i], c.output[i:])
				if !reflect.DeepEqual(got, whole) {
					t.Fatalf("split at %d:\n got %#v\nwant %#v", i, got, whole)
				}
				for _, e := range events {
					if e.Kind == CallStart && e.Name == "" {
						t.Fatalf("split at %d: call without a name", i)
					}
				}
			}
			bytes := make([]string, len(c.output))
			for i := 0; i < len(c.output); i++ {
				bytes[i] = c.output[i : i+1]
			}
			if got, _ := feed(c.opts, bytes...); !reflect.DeepEqual(got, whole) {
				t.Fatalf("byte by byte:\n got %#v\nwant %#v", got, whole)
			}
		})
	}
}

// The name is announced and arguments stream before the call is complete.
func TestIncremental(t *testing.T) {
	for _, c := range []struct {
		opts    Options
		partial string
		args    string
	}{
		{Options{Format: Qwen3, Tools: tools}, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci", `{"ci`},
		{Options{Format: Qwen3Coder, Tools: tools}, "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar", `{"city": "Par`},
		{Options{Format: GLM, Tools: tools}, "<tool_call>get_weather\n<arg_key>city</arg_key><arg_value>Par", `{"city": "Par`},
		{Options{Format: DeepSeekV3, Tools: tools}, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"ci", `{"ci`},
	} {
		p := NewParser(c.opts)
		var r Result
		for _, e := range p.Feed(c.partial) {
			r.Add(e)
		}
		if r.Content != "" || len(r.Calls) != 1 || r.Calls[0].Name != "get_weather" || r.Calls[0].Arguments != c.args {
			t.Errorf("%v: after a partial call got %#v, want the call started with arguments %q", c.opts.Format, r, c.args)
		}
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		file string
		want Format
	}{
		{"testdata/qwen3_template.jinja", Qwen3},
		{"testdata/deepseek_v3_template.jinja", DeepSeekV3},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := Detect(string(b)); got != c.want {
			t.Errorf("%s: Detect = %v, want %v", c.file, got, c.want)
		}
	}
	for src, want := range map[string]Format{
		"{{'<tool_call>' + tc.name + '<arg_key>' + k + '</arg_key>'}}":  GLM,
		"{{'<tool_call>\\n<function=' + name + '>\\n<parameter=' + k}}": Qwen3Coder,
		"{{ messages }}": None,
	} {
		if got := Detect(src); got != want {
			t.Errorf("Detect(%q) = %v, want %v", src, got, want)
		}
	}
	for f := None; f <= DeepSeekV3; f++ {
		if g, ok := ParseFormat(f.String()); !ok || g != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), g, ok)
		}
	}
}

// Any output, split anywhere, parses as it does whole, for every format.
func FuzzParser(f *testing.F) {
	for _, c := range cases {
		f.Add(c.output, uint(len(c.output)/2))
	}
	f.Fuzz(func(t *testing.T, output string, at uint) {
		i := int(at % uint(len(output)+1))
		for fm := None; fm <= DeepSeekV3; fm++ {
			for _, think := range []bool{false, true} {
				o := Options{Format: fm, Tools: tools, InThinking: think}
				whole := Parse(o, output)
				if got, _ := feed(o, output[:i], output[i:]); !reflect.DeepEqual(got, whole) {
					t.Fatalf("%v split at %d:\n got %#v\nwant %#v", fm, i, got, whole)
				}
			}
		}
	})
}
