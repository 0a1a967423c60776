package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// genericMessage replaces the message of errors whose detail could expose
// internals (codes.Internal, codes.Unknown, codes.DataLoss).
const genericMessage = "internal error; the oracle member logged the details"

// errorBody is the JSON body of every error response, shaped like
// google.rpc.Status without details.
type errorBody struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

type errorHandler struct {
	log *slog.Logger
}

// publicStatus returns the status a client may see for err, logging what is
// hidden.
func (e *errorHandler) publicStatus(ctx context.Context, r *http.Request, err error) *status.Status {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		path := ""
		if r != nil {
			path = r.URL.Path
		}
		e.log.ErrorContext(ctx, "httpapi: internal error hidden from client",
			"path", path, "code", st.Code().String(), "error", st.Message())
		return status.New(st.Code(), genericMessage)
	case codes.InvalidArgument:
		if msg, ok := parameterMessage(st.Message()); ok {
			return status.New(codes.InvalidArgument, msg)
		}
	}
	return st
}

// The gateway reports a path or query parameter it cannot parse with the
// parser's own error text ("type mismatch, parameter: epoch, error:
// strconv.ParseUint: parsing \"abc\": invalid syntax") and a body it cannot
// decode with protojson's ("proto: (line 1:12): invalid value for ...").
// Clients get a message in the API's own terms instead.
var (
	pathParamError  = regexp.MustCompile(`^type mismatch, parameter: ([A-Za-z0-9_.]+), error: (.*)$`)
	queryParamError = regexp.MustCompile(`^parsing field "([A-Za-z0-9_.]+)": (.*)$`)
	// protojson separates its prefix with a space or, at random, a
	// non-breaking one.
	protoError  = regexp.MustCompile(`^proto:[\s\x{00a0}]+`)
	parserError = regexp.MustCompile(`strconv\.Parse(Uint|Int|Bool|Float): parsing "((?:[^"\\]|\\.)*)": (invalid syntax|value out of range)`)
)

// maxEchoed bounds how much of a client's value an error message repeats.
const maxEchoed = 40

// parameterMessage rewrites the gateway's parse errors; ok is false for
// messages that are already the API's own.
func parameterMessage(msg string) (string, bool) {
	name, detail := "", ""
	if m := pathParamError.FindStringSubmatch(msg); m != nil {
		name, detail = m[1], m[2]
	} else if m := queryParamError.FindStringSubmatch(msg); m != nil {
		name, detail = m[1], m[2]
	}
	switch {
	case name != "":
		return "invalid parameter " + name + ": " + describeParse(detail), true
	case protoError.MatchString(msg):
		return "invalid request body: " + strings.TrimPrefix(protoError.ReplaceAllString(msg, ""), "syntax error "), true
	case msg == "unexpected EOF" || msg == "EOF":
		return "invalid request body: the JSON ends early", true
	case strings.Contains(msg, "strconv."):
		return "invalid request parameter", true
	}
	return "", false
}

// describeParse turns a parser error into what the value should have been.
func describeParse(detail string) string {
	m := parserError.FindStringSubmatch(detail)
	if m == nil {
		if strings.HasSuffix(detail, "is not a valid value") && !strings.Contains(detail, "strconv.") {
			return detail
		}
		return "not a valid value"
	}
	value := m[2]
	if len(value) > maxEchoed {
		value = value[:maxEchoed] + "..."
	}
	want := map[string]string{
		"Uint":  "an unsigned integer",
		"Int":   "an integer",
		"Bool":  "true or false",
		"Float": "a number",
	}[m[1]]
	if m[3] == "value out of range" {
		return `"` + value + `" is out of range for ` + want
	}
	return `"` + value + `" is not ` + want
}

// handle is the gateway's error handler: it maps the gRPC status to an HTTP
// status and writes {code, message}.
func (e *errorHandler) handle(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	httpStatus := 0
	var custom *runtime.HTTPStatusError
	if errors.As(err, &custom) {
		httpStatus = custom.HTTPStatus
		err = custom.Err
	}
	st := e.publicStatus(ctx, r, err)
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}
	if st.Code() == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.Header().Del("Trailer")
	w.Header().Del("Transfer-Encoding")
	writeJSONError(w, httpStatus, int32(st.Code()), st.Message())
}

// routing answers requests the gateway has no route for: 404 for an unknown
// path, 405 for a known path with another method.
func (e *errorHandler) routing(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusNotFound:
		err = status.Errorf(codes.NotFound, "no REST resource at %s; see /openapi.json for the API", r.URL.Path)
	case http.StatusMethodNotAllowed:
		err = status.Errorf(codes.Unimplemented, "%s is not allowed on %s", r.Method, r.URL.Path)
	case http.StatusBadRequest:
		err = status.Error(codes.InvalidArgument, "malformed request path")
	default:
		err = status.Error(codes.Internal, http.StatusText(httpStatus))
	}
	e.handle(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: err})
}

// stream is the gateway's stream error handler: the error written as the last
// chunk of a stream gets the same treatment as a unary error.
func (e *errorHandler) stream(ctx context.Context, err error) *status.Status {
	return e.publicStatus(ctx, nil, err)
}

// writeJSONError writes an error response.
func writeJSONError(w http.ResponseWriter, httpStatus int, code int32, message string) {
	body, _ := json.Marshal(errorBody{Code: code, Message: message}) // cannot fail: two plain fields
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(append(body, '\n'))
}
