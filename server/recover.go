package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
)

// A bug (or a model file that changed under the server) must fail one
// request, not the process: net/http would recover a panicking handler but
// drop the connection with no answer, and a panic in the generation would
// leave a stream cut silently. Panics are logged with their stack and
// answered in the API's shape.

// recoverPanics answers a handler's panic with a 500 in the request's
// dialect when nothing has been written yet.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // net/http's own way to abort a response
			}
			s.cfg.Logger.Error("panic serving a request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				return // a response has begun; the stream paths report their own failures
			}
			dialectOf(r).writeError(w, &apiError{kind: errInternal, msg: fmt.Sprintf("internal error: %v", v)})
		}()
		next.ServeHTTP(w, r)
	})
}

// errPanic marks a generation that panicked.
var errPanic = errors.New("panic")

// generateRecovered calls the backend's Generate, turning a panic into an
// error so that the caller answers it like any failed generation (a 500,
// or an error event on a stream).
func (s *Server) generateRecovered(ctx context.Context, req GenRequest, emit func(Token) error) (res GenResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.cfg.Logger.Error("panic in a generation", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	return s.b.Generate(ctx, req, emit)
}
