package server

import (
	"fmt"
	"net/http"
)

// errKind is what went wrong, independent of the API dialect that reports it.
type errKind int

const (
	errInvalid     errKind = iota // malformed or missing request fields
	errContext                    // the prompt does not fit the context
	errAuth                       // missing or wrong API key
	errNotFound                   // unknown model or route
	errMethod                     // wrong HTTP method
	errTooLarge                   // request body over the limit
	errOverloaded                 // the queue is full
	errUnavailable                // the server is shutting down
	errInternal                   // the backend failed
	errForbidden                  // a Host or Origin this server does not answer
	errMediaType                  // a POST body that is not declared JSON
	errTimeout                    // the request body did not arrive in time
)

// apiError is an error to report to the client.
type apiError struct {
	kind  errKind
	msg   string
	param string // OpenAI: the offending field, if one
}

func (e *apiError) Error() string { return e.msg }

func invalid(param, format string, args ...any) *apiError {
	return &apiError{kind: errInvalid, param: param, msg: fmt.Sprintf(format, args...)}
}

// dialect writes errors and streams in one API's shapes.
type dialect int

const (
	openAI dialect = iota
	anthropic
)

// status is the HTTP status of an error kind in a dialect. OpenAI clients
// know 429 as "try later"; Anthropic's is 529 overloaded_error.
func (d dialect) status(k errKind) int {
	switch k {
	case errInvalid, errContext:
		return http.StatusBadRequest
	case errAuth:
		return http.StatusUnauthorized
	case errNotFound:
		return http.StatusNotFound
	case errMethod:
		return http.StatusMethodNotAllowed
	case errTooLarge:
		return http.StatusRequestEntityTooLarge
	case errOverloaded:
		if d == anthropic {
			return 529
		}
		return http.StatusTooManyRequests
	case errUnavailable:
		return http.StatusServiceUnavailable
	case errForbidden:
		return http.StatusForbidden
	case errMediaType:
		return http.StatusUnsupportedMediaType
	case errTimeout:
		return http.StatusRequestTimeout
	}
	return http.StatusInternalServerError
}

// body is the error's JSON body in the dialect.
func (d dialect) body(e *apiError) any {
	if d == anthropic {
		t := map[errKind]string{
			errInvalid: "invalid_request_error", errContext: "invalid_request_error",
			errAuth: "authentication_error", errNotFound: "not_found_error",
			errMethod: "invalid_request_error", errTooLarge: "request_too_large",
			errOverloaded: "overloaded_error", errUnavailable: "overloaded_error",
			errInternal: "api_error", errForbidden: "permission_error",
			errMediaType: "invalid_request_error", errTimeout: "timeout_error",
		}[e.kind]
		return map[string]any{"type": "error", "error": map[string]any{"type": t, "message": e.msg}}
	}
	typ, code := "invalid_request_error", any(nil)
	switch e.kind {
	case errContext:
		code = "context_length_exceeded"
	case errAuth:
		code = "invalid_api_key"
	case errNotFound:
		if e.param == "model" {
			code = "model_not_found"
		}
	case errOverloaded:
		typ, code = "rate_limit_error", "rate_limit_exceeded"
	case errUnavailable, errInternal:
		typ = "server_error"
	case errForbidden:
		typ = "permission_error"
	case errTimeout:
		typ = "timeout_error"
	}
	var param any
	if e.param != "" {
		param = e.param
	}
	return map[string]any{"error": map[string]any{"message": e.msg, "type": typ, "param": param, "code": code}}
}

func (d dialect) writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, d.status(e.kind), d.body(e))
}
