package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

const modelID = "mlx-community/Tiny-MoE-4bit"

// fake returns a backend that answers like WeatherReply for format.
func fake(format string) *servertest.Backend {
	return &servertest.Backend{ID: modelID, Context: 4096, Template: servertest.Templates[format],
		Reply: servertest.WeatherReply(format)}
}

func start(t *testing.T, b server.Backend, cfg server.Config) *httptest.Server {
	t.Helper()
	srv, err := server.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func post(t *testing.T, url, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// postJSON posts and decodes the JSON answer, checking the status.
func postJSON(t *testing.T, url, body string, wantStatus int, headers ...string) map[string]any {
	t.Helper()
	resp := post(t, url, body, headers...)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s: status %d, want %d: %s", url, resp.StatusCode, wantStatus, raw)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("POST %s: answer is not JSON: %v: %s", url, err, raw)
	}
	return v
}

type sseEvent struct {
	name string
	data string
}

func (e sseEvent) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(e.data), &v); err != nil {
		t.Fatalf("event %q: data is not JSON: %v: %s", e.name, err, e.data)
	}
	return v
}

// readSSE reads a whole event stream; comment lines are skipped.
func readSSE(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" || cur.name != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data += line[6:]
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return out
}

func streamEvents(t *testing.T, url, body string) []sseEvent {
	t.Helper()
	resp := post(t, url, body)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream %s: status %d, type %q: %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	return readSSE(t, resp.Body)
}

// get walks a decoded JSON value: get(v, "choices", 0, "message").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func jsonEqual(t *testing.T, got string, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(got), &a); err != nil {
		t.Fatalf("%q is not JSON: %v", got, err)
	}
	json.Unmarshal([]byte(want), &b)
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	if string(ga) != string(gb) {
		t.Fatalf("JSON %s, want %s", ga, gb)
	}
}

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"Weather in a city",
	"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`

const antWeatherTool = `{"name":"get_weather","description":"Weather in a city",
	"input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`

var formats = []string{"qwen3", "qwen3-coder", "glm", "deepseek-v3"}
