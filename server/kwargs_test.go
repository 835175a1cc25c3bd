package server

import (
	"encoding/json"
	"testing"
)

func TestTemplateKwargsKeepJSON(t *testing.T) {
	raw := map[string]json.RawMessage{"enable_thinking": []byte("false"), "n": []byte("1"), "obj": []byte(`{"b":1,"a":2}`), "s": []byte(`"x"`)}
	got := templateKwargs(raw)
	if got["enable_thinking"] != false || got["s"] != "x" {
		t.Fatalf("scalars: %#v", got)
	}
	if string(got["n"].(json.RawMessage)) != "1" || string(got["obj"].(json.RawMessage)) != `{"b":1,"a":2}` {
		t.Fatalf("numbers and objects must stay raw JSON: %#v", got)
	}
}
