package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/internal/testenv"
	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// fakeServeEnv names a tool-call format; with it set, this test binary is
// the mlx-moe command with a scripted backend (servertest.WeatherReply) in
// place of the engine; "agent" is the real model with scripted replies
// (agentBackend, for scripts/agents). scripts/server-clients/run.sh drives it with the
// official SDKs:
//
//	MLXMOE_FAKE_SERVE=qwen3 ./mlx-moe.test serve --port 8080
const fakeServeEnv = "MLXMOE_FAKE_SERVE"

func TestMain(m *testing.M) {
	if format := os.Getenv(fakeServeEnv); format != "" {
		newServeBackend = func(o serveOptions, stderr io.Writer) (server.Backend, func() error, error) {
			return fakeBackend(format, 0), func() error { return nil }, nil
		}
		if format == "agent" {
			newServeBackend = loadAgentBackend // scripts/agents
		}
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// Commands the tests run save warm-start state: not in the user's cache.
	os.Exit(testenv.Run(m))
}

func fakeBackend(format string, delay time.Duration) *servertest.Backend {
	return &servertest.Backend{ID: "mlx-moe/fake-" + format, Context: 8192, Template: servertest.Templates[format],
		Reply: servertest.WeatherReply(format), TokenDelay: delay}
}

func TestServeWithoutEngine(t *testing.T) {
	saved := newServeBackend
	newServeBackend = nil
	defer func() { newServeBackend = saved }()
	var stderr strings.Builder
	err := runServe([]string{"--port", "0", "--kv-bits", "4"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no inference engine") {
		t.Errorf("serve without an engine: %v", err)
	}
	if err := runServe([]string{"--port", "0", "--kv-bits", "3"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--kv-bits 3") {
		t.Errorf("--kv-bits 3: %v", err)
	}
	if err := runServe([]string{"--port", "70000"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--port") {
		t.Errorf("bad port: %v", err)
	}
}

// Shutdown lets an in-flight stream finish within the grace period, and
// cancels it after.
func TestServeShutdown(t *testing.T) {
	for _, c := range []struct {
		grace    time.Duration
		complete bool
	}{{5 * time.Second, true}, {50 * time.Millisecond, false}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(fakeBackend("qwen3", 20*time.Millisecond), server.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan error, 1)
		go func() { returned <- serveOn(ctx, func() {}, ln, srv, c.grace, io.Discard) }()
		url := "http://" + ln.Addr().String()
		resp, err := http.Post(url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"stream":true}`))
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(resp.Body)
		r.ReadString('\n') // the stream has started
		cancel()
		rest, _ := io.ReadAll(r)
		resp.Body.Close()
		if got := strings.Contains(string(rest), "[DONE]"); got != c.complete {
			t.Errorf("grace %v: stream completed %v, want %v", c.grace, got, c.complete)
		}
		if !c.complete && !strings.Contains(string(rest), `"type":"server_error"`) {
			t.Errorf("grace %v: the cut stream has no error chunk: %q", c.grace, rest)
		}
		select {
		case err := <-returned:
			if err != nil {
				t.Errorf("serveOn returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("serveOn did not return")
		}
		if _, err := http.Get(url + "/health"); err == nil {
			t.Error("the server still answers after shutdown")
		}
	}
}

// startFakeServe runs this test binary as `mlx-moe serve` with the fake
// backend and returns its address.
func startFakeServe(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--port", "0"}, args...)...)
	cmd.Env = append(os.Environ(), fakeServeEnv+"=qwen3")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var addr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "mlx-moe serve: listening on "); ok {
			addr = a
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if addr == "" {
		cmd.Process.Kill()
		t.Fatal("serve printed no address")
	}
	return cmd, addr
}

// The real command, signalled with SIGTERM, exits 0.
func TestServeSIGTERM(t *testing.T) {
	cmd, addr := startFakeServe(t)
	resp, err := http.Get(addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v", err)
	}
	resp.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit status 0", err)
	}
}

// A client that trickles its request headers is cut off after
// readHeaderTimeout instead of holding its connection.
func TestServeReadHeaderTimeout(t *testing.T) {
	saved := readHeaderTimeout
	readHeaderTimeout = 100 * time.Millisecond
	defer func() { readHeaderTimeout = saved }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(fakeBackend("qwen3", 0), server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() { returned <- serveOn(ctx, func() {}, ln, srv, time.Second, io.Discard) }()
	defer func() { cancel(); <-returned }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-") // and no more
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the connection was still open after the header timeout: %v", err)
	}
	t.Logf("the server closed the connection, answering %q", rest)
}

// --allowed-host and --cors-origin reach the server: the named host and
// origin are served (with a CORS preflight answer), others refused.
func TestServeSecurityFlags(t *testing.T) {
	cmd, addr := startFakeServe(t, "--allowed-host", "box.lan", "--cors-origin", "http://localhost:3000,http://127.0.0.1:5173")
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	do := func(method, host string, headers ...string) *http.Response {
		req, _ := http.NewRequest(method, addr+"/v1/models", nil)
		req.Host = host
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		method, host, origin string
		want                 int
	}{
		{"GET", "box.lan:8080", "", 200},
		{"GET", "evil.example", "", 403},
		{"GET", "", "http://127.0.0.1:5173", 200},
		{"GET", "", "http://evil.example", 403},
		{"OPTIONS", "", "http://localhost:3000", 204},
	} {
		resp := do(c.method, c.host, "Origin", c.origin, "Access-Control-Request-Method", "GET")
		if resp.StatusCode != c.want {
			t.Errorf("%s Host %q Origin %q: %d, want %d", c.method, c.host, c.origin, resp.StatusCode, c.want)
		}
		if c.want != 403 && c.origin != "" && resp.Header.Get("Access-Control-Allow-Origin") != c.origin {
			t.Errorf("%s Origin %q: Allow-Origin %q", c.method, c.origin, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	var stderr strings.Builder
	if err := runServe([]string{"--cors-origin", "a,,b"}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "empty item") {
		t.Errorf("--cors-origin a,,b: %v", err)
	}
}
