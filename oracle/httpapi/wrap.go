package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// limitBody answers 413 to requests whose body is larger than limit. The body
// is read (at most limit+1 bytes) before the request reaches the gateway, so
// chunked uploads without Content-Length are caught too and the client gets a
// clear error rather than a decode failure.
func limitBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		tooLarge := func() {
			writeJSONError(w, http.StatusRequestEntityTooLarge, int32(codes.InvalidArgument),
				fmt.Sprintf("request body is larger than the limit of %d bytes", limit))
		}
		if r.ContentLength > limit {
			tooLarge()
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, int32(codes.InvalidArgument),
				"could not read the request body: "+err.Error())
			return
		}
		if int64(len(body)) > limit {
			tooLarge()
			return
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// corsAllowedHeaders are the request headers a cross-origin caller may send.
var corsAllowedHeaders = strings.Join(append([]string{"Content-Type"}, ForwardedHeaders...), ", ")

// cors adds CORS headers for requests from exactly the allowed origins and
// answers their preflight requests. With no allowed origins it adds nothing,
// and preflights are passed on (and so answered 404/405 like any OPTIONS).
func cors(next http.Handler, allowed []string) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		set[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" || !set[origin] {
			if preflight {
				writeJSONError(w, http.StatusForbidden, int32(codes.PermissionDenied),
					fmt.Sprintf("origin %q is not allowed; the operator lists allowed origins in the member's configuration", origin))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Content-Type, X-Request-Id")
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowedHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthHandler serves /healthz from check.
func healthHandler(check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err := check(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "degraded", "message": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "serving"})
	})
}

// errDegraded is returned by the default health check when the member does
// not report "serving".
var errDegraded = errors.New("member is degraded")

// adminHealth is the default health check: the member's own GetHealth.
func adminHealth(client truegpuv1.AdminServiceClient) func(context.Context) error {
	return func(ctx context.Context) error {
		resp, err := client.GetHealth(ctx, &truegpuv1.GetHealthRequest{})
		if err != nil {
			return fmt.Errorf("health check over gRPC failed: %w", err)
		}
		if resp.GetStatus() != "serving" {
			if len(resp.GetProblems()) > 0 {
				return fmt.Errorf("%w: %s", errDegraded, strings.Join(resp.GetProblems(), "; "))
			}
			return fmt.Errorf("%w: status %q", errDegraded, resp.GetStatus())
		}
		return nil
	}
}

// metrics are the handler's own HTTP request metrics, in a registry of their
// own so several handlers can live in one process (tests, oracled dev).
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "truegpu_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "truegpu_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method (streams count until they end).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	m.registry.MustRegister(m.requests, m.duration)
	return m
}

// routeKey holds a *string that the inner handlers set to the route pattern.
type routeKey struct{}

func setRoute(ctx context.Context, route string) {
	if p, ok := ctx.Value(routeKey{}).(*string); ok {
		*p = route
	}
}

// routed labels requests to h with route.
func routed(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r.Context(), route)
		h.ServeHTTP(w, r)
	})
}

// recordRoute is a gateway middleware that labels the request with the
// matched path template, e.g. "/v1/nodes/{address}".
func recordRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			// "/v1/nodes/{address=*}" -> "/v1/nodes/{address}", as in the .proto.
			setRoute(r.Context(), strings.ReplaceAll(p.String(), "=*}", "}"))
		}
		next(w, r, params)
	}
}

// knownMethods keeps the method label bounded.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := "unmatched"
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, &route))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		method := r.Method
		if !knownMethods[method] {
			method = "other"
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// statusWriter records the status code. It passes Flush through (the watch
// stream flushes after every message) and exposes the wrapped writer to
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader passes on the first call only. A stream whose headers were
// sent early (openStream) and that then ends in an error gets a second call
// from the gateway; dropping it keeps the server log quiet.
func (s *statusWriter) WriteHeader(code int) {
	if s.status != 0 {
		return
	}
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
