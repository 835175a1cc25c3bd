// Command loadcheck is the server's memory and leak acceptance check (not
// part of go test: it takes a minute and measures a whole process). It
// starts `mlx-moe serve` on the embedded default model, records a baseline,
// then sends at once N count_tokens requests with a large body each (a
// 30 MB user message) and N streaming chat requests, half OpenAI and half
// Anthropic. It samples the server's RSS while they run and checks:
//
//   - peak RSS growth over the baseline stays within -max-growth;
//
//   - every request is answered with 200, 400, 413, 429 or 529, and every
//     stream ends properly ([DONE], message_stop, or an error event);
//
//   - after the load RSS, goroutines and open fds return within 10% of
//     the baseline (RSS after the idle period the Go runtime needs to hand
//     freed memory back).
//
// Run it with a built binary:
//
//	go build -o /tmp/mlx-moe ./cmd/mlx-moe
//	go run ./scripts/loadcheck -bin /tmp/mlx-moe
//
// Linux only (it reads /proc). Exit status 1 when a check fails.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	bin := flag.String("bin", "", "the mlx-moe binary (required)")
	n := flag.Int("n", 16, "large count_tokens bodies, and streaming chats, sent at once")
	bodyMB := flag.Int("body-mb", 30, "size of each count_tokens body in MB")
	maxGrowth := flag.Float64("max-growth-gb", 1.5, "allowed peak RSS growth over the baseline, GB")
	settle := flag.Duration("settle", 60*time.Second, "longest wait for RSS to return to the baseline after the load")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "loadcheck: -bin is required")
		os.Exit(2)
	}
	if err := run(*bin, *n, *bodyMB, *maxGrowth, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "loadcheck:", err)
		os.Exit(1)
	}
}

func run(bin string, n, bodyMB int, maxGrowthGB float64, settle time.Duration) error {
	cache, err := os.MkdirTemp("", "loadcheck-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	cmd := exec.Command(bin, "serve", "--port", "0", "--quiet", "--no-warm-start", "--any-model")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	url, err := listenAddr(stderr)
	if err != nil {
		return err
	}
	go io.Copy(os.Stderr, stderr)

	// Warm up the paths the load takes, so that lazily built state is in
	// the baseline, then let the process settle.
	small := countBody(1 << 10)
	if st, _ := post(url+"/v1/messages/count_tokens", small); st != 200 {
		return fmt.Errorf("warm-up count_tokens: status %d", st)
	}
	if r := stream(url, 0); r.err != nil {
		return fmt.Errorf("warm-up stream: %v", r.err)
	}
	time.Sleep(2 * time.Second)
	base := sample(url, pid)
	fmt.Printf("baseline: RSS %.0f MB, %d goroutines, %d fds\n", mb(base.rss), base.goroutines, base.fds)

	big := countBody(bodyMB * 1000 * 1000)
	var peak int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				peak = max(peak, rssOf(pid))
			}
		}
	})
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	var failures []string
	note := func(kind string, status int, err error) {
		mu.Lock()
		defer mu.Unlock()
		statuses[fmt.Sprintf("%s %d", kind, status)]++
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", kind, err))
		}
	}
	for i := range n {
		wg.Go(func() {
			st, err := post(url+"/v1/messages/count_tokens", big)
			if err == nil && !answered(st) {
				err = fmt.Errorf("status %d", st)
			}
			note("count_tokens", st, err)
		})
		wg.Go(func() {
			r := stream(url, i)
			note(r.kind, r.status, r.err)
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	elapsed := time.Since(start)
	hwm := procField(pid, "VmHWM:")
	peak = max(peak, hwm)
	growth := float64(peak-base.rss) / 1e9
	fmt.Printf("load: %d x %d MB count_tokens + %d streams in %.1f s; peak RSS %.0f MB (growth %.2f GB, limit %.2f GB)\n",
		n, bodyMB, n, elapsed.Seconds(), mb(peak), growth, maxGrowthGB)
	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %s: %d\n", k, statuses[k])
	}

	// Idle: freed heap goes back to the OS over time; goroutines and
	// connections end as soon as the clients close theirs.
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(settle)
	var after stats
	for {
		time.Sleep(2 * time.Second)
		after = sample(url, pid)
		if within(after, base) || time.Now().After(deadline) {
			break
		}
	}
	fmt.Printf("after: RSS %.0f MB, %d goroutines, %d fds (%.0f s after the load)\n",
		mb(after.rss), after.goroutines, after.fds, time.Since(start.Add(elapsed)).Seconds())

	var errs []string
	errs = append(errs, failures...)
	if growth > maxGrowthGB {
		errs = append(errs, fmt.Sprintf("peak RSS growth %.2f GB is over %.2f GB", growth, maxGrowthGB))
	}
	if !within(after, base) {
		errs = append(errs, "RSS, goroutines or fds did not return within 10% of the baseline")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d checks failed:\n  %s", len(errs), strings.Join(errs, "\n  "))
	}
	fmt.Println("ok")
	return nil
}

// answered: the statuses the acceptance allows for the large bodies.
func answered(status int) bool {
	switch status {
	case 200, 400, 413, 429, 529:
		return true
	}
	return false
}

type stats struct {
	rss             int64
	goroutines, fds int
}

func within(a, base stats) bool {
	return float64(a.rss) <= 1.1*float64(base.rss) && float64(a.goroutines) <= 1.1*float64(base.goroutines) &&
		float64(a.fds) <= 1.1*float64(base.fds)
}

func sample(url string, pid int) stats {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return stats{rss: rssOf(pid), goroutines: goroutines(url), fds: len(entries)}
}

func rssOf(pid int) int64 { return procField(pid, "VmRSS:") }

// procField reads a kB field of /proc/PID/status, in bytes.
func procField(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func goroutines(url string) int {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return -1
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// listenAddr reads the server's address from its log.
func listenAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "mlx-moe serve: listening on "); ok {
			return a, nil
		}
	}
	return "", fmt.Errorf("the server printed no address")
}

// countBody is a count_tokens request whose one message is about size
// bytes of source code.
func countBody(size int) []byte {
	const line = "    for (i, x) in enumerate(items): total += x * weights[i]  # accumulate\n"
	text := strings.Repeat(line, size/len(line)+1)[:size]
	body, _ := json.Marshal(map[string]any{"model": "any", "messages": []any{map[string]any{"role": "user", "content": text}}})
	return body
}

func post(url string, body []byte) (int, error) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

type streamResult struct {
	kind   string
	status int
	err    error
}

// stream runs one streaming chat (even i: OpenAI, odd: Anthropic) and
// checks that it ends properly.
func stream(url string, i int) streamResult {
	path, end := "/v1/chat/completions", "data: [DONE]"
	body := fmt.Sprintf(`{"model":"any","messages":[{"role":"user","content":"def f%d(x):"}],"max_tokens":24,"stream":true}`, i)
	kind := "openai stream"
	if i%2 == 1 {
		path, end, kind = "/v1/messages", "event: message_stop", "anthropic stream"
		body = fmt.Sprintf(`{"model":"any","max_tokens":24,"messages":[{"role":"user","content":"def f%d(x):"}],"stream":true}`, i)
	}
	resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		return streamResult{kind, 0, err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := streamResult{kind, resp.StatusCode, err}
	switch {
	case err != nil:
	case resp.StatusCode == 200 && !strings.Contains(string(raw), end) && !strings.Contains(string(raw), `"error"`):
		r.err = fmt.Errorf("stream ended without %q or an error event", end)
	case resp.StatusCode != 200 && !answered(resp.StatusCode):
		r.err = fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return r
}
