package jinja

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// testError mirrors the error type a caller's raise_exception returns.
type testError struct{ msg string }

func (e *testError) Error() string { return e.msg }

// testGlobals are the transformers globals, with strftime_now frozen at the
// instant the goldens were rendered with (see chat/testdata/render_golden.py).
func testGlobals() map[string]any {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return map[string]any{
		"raise_exception": Func(func(args []any, kw *Dict) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("raise_exception takes one argument")
			}
			return nil, &testError{String(args[0])}
		}),
		"strftime_now": Func(func(args []any, kw *Dict) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("strftime_now takes one argument")
			}
			return Strftime(now, String(args[0])), nil
		}),
	}
}

type golden struct {
	Rendered *string `json:"rendered"`
	Error    string  `json:"error"`
	Raised   bool    `json:"raised"`
}

// TestSnippets renders small templates covering whitespace control, Python
// printing, JSON, methods, filters, tests, scoping and errors, and compares
// each with what Python's jinja2 rendered (snippets_golden.json).
func TestSnippets(t *testing.T) {
	var cases []struct {
		Name     string          `json:"name"`
		Template string          `json:"template"`
		Vars     json.RawMessage `json:"vars"`
	}
	readJSON(t, "testdata/snippets.json", &cases)
	var want map[string]golden
	readJSON(t, "testdata/snippets_golden.json", &want)
	if len(cases) != len(want) {
		t.Fatalf("%d cases but %d goldens", len(cases), len(want))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			g, ok := want[c.Name]
			if !ok {
				t.Fatalf("no golden for %s", c.Name)
			}
			vars, err := FromJSON(c.Vars)
			if err != nil {
				t.Fatal(err)
			}
			all := testGlobals()
			for i, k := range vars.(*Dict).Keys() {
				all[k.(string)] = vars.(*Dict).Values()[i]
			}
			got, err := render(c.Template, all)
			checkGolden(t, g, got, err)
		})
	}
}

func render(src string, vars map[string]any) (string, error) {
	tmpl, err := Parse(src)
	if err != nil {
		return "", err
	}
	return tmpl.Render(vars)
}

func checkGolden(t *testing.T, g golden, got string, err error) {
	t.Helper()
	switch {
	case g.Rendered != nil && err != nil:
		t.Fatalf("error %v, want %q", err, *g.Rendered)
	case g.Rendered != nil && got != *g.Rendered:
		t.Fatalf("got  %q\nwant %q", got, *g.Rendered)
	case g.Rendered == nil && err == nil:
		t.Fatalf("rendered %q, want error %q", got, g.Error)
	case g.Raised:
		var te *testError
		if !errors.As(err, &te) || te.msg != g.Error {
			t.Fatalf("error %v, want raised %q", err, g.Error)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestSyntaxErrorsNameTheLine(t *testing.T) {
	for _, src := range []string{
		"a\n{% if x %}",
		"{{ 1 + }}",
		"{% for %}",
		"{% endif %}",
		"{{ 'unterminated }}",
		"{# never closed",
		"{% unknowntag %}",
	} {
		_, err := Parse(src)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line < 1 {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError with a line", src, err)
		}
		if err != nil && !strings.Contains(err.Error(), "line") {
			t.Errorf("Parse(%q) error %q does not name the line", src, err)
		}
	}
}

// FuzzTemplate checks that no template text, however broken, panics the
// parser or the renderer.
func FuzzTemplate(f *testing.F) {
	data, err := os.ReadFile("testdata/snippets.json")
	if err != nil {
		f.Fatal(err)
	}
	var cases []struct {
		Template string `json:"template"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add(c.Template)
	}
	vars := testGlobals()
	msgs, _ := FromJSON([]byte(`[{"role": "user", "content": "hi", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1.5}}}]}]`))
	vars["messages"] = msgs
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			return
		}
		_, _ = tmpl.Render(vars)
	})
}

// TestResourceLimits checks that hostile templates fail with errors instead
// of exhausting the stack or memory.
func TestResourceLimits(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("{% if true %}", 1000),
		"{{ " + strings.Repeat("(", 1000) + "1" + strings.Repeat(")", 1000) + " }}",
		"{{ " + strings.Repeat("not ", 1000) + "1 }}",
		"{{ " + strings.Repeat("-", 1000) + "1 }}",
	} {
		if _, err := Parse(src); err == nil || !strings.Contains(err.Error(), "nested deeper") {
			t.Errorf("deep template (%d bytes): error %v", len(src), err)
		}
	}
	for src, want := range map[string]string{
		"{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}": "RecursionError",
		"{{ 'ab' * 10000000000 }}":                               "MemoryError",
		"{{ [1, 2] * 100000000 }}":                               "MemoryError",
		"{{ 2 ** 64 }}":                                          "OverflowError",
		"{{ range(1000000) | length }}":                          "range too big",
	} {
		if _, err := render(src, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %s", src, err, want)
		}
	}
	if got, err := render("{{ 3 ** 5 }} {{ (-2) ** 63 }} {{ 2 ** -1 }}", nil); err != nil || got != "243 -9223372036854775808 0.5" {
		t.Errorf("powers: %q, %v", got, err)
	}
}
