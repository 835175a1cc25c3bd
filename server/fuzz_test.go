package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// fuzzBodies is the seed corpus beside testdata/fuzz: valid requests of
// each kind, from which the fuzzer mutates.
var fuzzBodies = []string{
	`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
	`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true,"stream_options":{"include_usage":true},"stop":["a","b"]}`,
	`{"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[` + weatherTool + `],"tool_choice":"required","max_tokens":3}`,
	`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"ok"}],"temperature":0.5,"top_p":0.5,"top_k":3,"min_p":0.1,"seed":1}`,
	`{"model":"Tiny-MoE-4bit","max_tokens":20,"messages":[{"role":"user","content":"hi"}],"stream":true,"thinking":{"type":"enabled","budget_tokens":100}}`,
	`{"model":"Tiny-MoE-4bit","max_tokens":20,"system":[{"type":"text","text":"x-anthropic-billing-header: cch=1;"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stop_sequences":["!"]}`,
	`{"model":"Tiny-MoE-4bit","max_tokens":20,"tools":[` + antWeatherTool + `],"tool_choice":{"type":"tool","name":"get_weather"},"messages":[{"role":"user","content":"w"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"get_weather","input":{"city":"P"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"sun","is_error":true}]}]}`,
	`{"prompt":"once upon","max_tokens":4,"stream":true}`,
}

// fuzzRoutes: the fuzzer picks one with its first input.
var fuzzRoutes = []string{"/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/messages/count_tokens"}

// No request body makes the server answer 5xx or panic, on any route, for
// every tool-call format.
func FuzzRequests(f *testing.F) {
	for i, b := range fuzzBodies {
		for r := range fuzzRoutes {
			f.Add(uint8(r+4*(i%4)), b)
		}
	}
	handlers := map[string]http.Handler{}
	for _, format := range formats {
		b := &servertest.Backend{ID: modelID, Context: 512, Template: servertest.Templates[format], Reply: servertest.WeatherReply(format)}
		srv, err := server.New(b, server.Config{MaxBodyBytes: 1 << 16})
		if err != nil {
			f.Fatal(err)
		}
		handlers[format] = srv.Handler()
	}
	f.Fuzz(func(t *testing.T, pick uint8, body string) {
		route := fuzzRoutes[int(pick)%len(fuzzRoutes)]
		format := formats[int(pick/4)%len(formats)]
		rec := httptest.NewRecorder()
		handlers[format].ServeHTTP(rec, httptest.NewRequest("POST", route, strings.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("%s (%s): status %d for %q: %s", route, format, rec.Code, body, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), `"type":"error"`) && rec.Code == 200 && !strings.Contains(rec.Body.String(), "event: error") {
			t.Fatalf("%s: an error body with status 200: %s", route, rec.Body.String())
		}
	})
}
