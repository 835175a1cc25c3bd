package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
)

// sseWriter writes one server-sent-event stream. Each event is flushed at
// once and gets its own write deadline, so a long stream is not cut by a
// server-wide timeout while a stuck client still is. Safe for concurrent
// use (the ping loop writes too); after the first failed write every write
// fails.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	err     error
}

func newSSE(w http.ResponseWriter, timeout time.Duration) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
	s.write(nil) // send the headers now: the request may wait in the queue
	return s
}

// event writes "event: name" (when name is set) and data as JSON.
func (s *sseWriter) event(name string, data any) error {
	var b bytes.Buffer
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	b.WriteString("data: ")
	b.Write(marshal(data))
	b.WriteString("\n\n")
	return s.write(b.Bytes())
}

func (s *sseWriter) write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
		return err
	}
	if len(p) > 0 {
		if _, err := s.w.Write(p); err != nil {
			s.err = err
			return err
		}
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
	}
	return s.err
}

// failed reports whether a write has failed (the client is gone).
func (s *sseWriter) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// pinger writes keep-alive events every interval until stopped, so that
// clients and proxies do not give up during a long queue wait or prefill.
type pinger struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startPings(interval time.Duration, ping func() error) *pinger {
	p := &pinger{stop: make(chan struct{})}
	p.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				if ping() != nil {
					return
				}
			}
		}
	})
	return p
}

// end stops the pings and waits for the loop, so nothing writes to the
// response after the handler returns.
func (p *pinger) end() {
	close(p.stop)
	p.wg.Wait()
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		// Only the server's own types are encoded, with arguments checked
		// as JSON before; this is a last resort, not a path tests expect.
		return []byte(`{"error":{"message":"server: encoding the response failed","type":"server_error"}}`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(marshal(v), '\n'))
}
