// Package httpapi is the HTTP side of an oracle member: the REST API
// (grpc-gateway over the member's own gRPC server), the dashboard, the
// OpenAPI document, health and Prometheus metrics, all behind one
// http.Handler.
//
// The gateway runs in client mode: every REST call becomes a gRPC call on the
// connection given to New, so REST and gRPC share one implementation and
// server streams (GET /v1/watch/scores) work. Members pass
// oracle.LocalConn, which serves unary calls in process with the gRPC
// server's size cap and error mapping and sends streams over the network.
//
// Routes:
//
//	/v1/...         REST API of the four truegpu.v1 services (see docs/api)
//	/healthz        200 {"status":"serving"} or 503 {"status":"degraded",...}
//	/metrics        Prometheus metrics: Options.Metrics plus HTTP request metrics
//	/openapi.json   the OpenAPI (Swagger 2.0) document of the REST API
//	/               the dashboard (package dashboard) and its assets under /ui/
//
// JSON encoding follows protojson with the lowerCamelCase field names of the
// published OpenAPI document (e.g. "scoreBp"), and emits unpopulated fields,
// so clients see zero scores and empty lists rather than missing keys. As in
// protojson, 64-bit integers are JSON strings, bytes are base64 and enums are
// their names (e.g. "NODE_STATUS_TRUSTED"). Requests may use either camelCase
// or the proto field names; unknown fields are ignored.
//
// Server streams (GET /v1/watch/scores) are newline-delimited JSON, one
// {"result": {...}} object per message. Their headers (status 200) are sent
// as soon as the stream opens; an error that ends a stream arrives as a last
// {"error": {"code": ..., "message": ...}} line.
//
// Errors are JSON objects shaped like google.rpc.Status, {"code": <gRPC code>,
// "message": "..."}, with the HTTP status mapped from the gRPC code. For
// Internal, Unknown and DataLoss the message is replaced by a generic one, so
// no internal detail reaches a client; other codes keep the service's message,
// which the services write to be safe to show.
//
// Only the request headers in ForwardedHeaders reach the gRPC services (as
// lower-case metadata); everything else, cookies included, is dropped. The
// gateway itself adds x-forwarded-for and x-forwarded-host (from the
// connection and Host) and honours a Grpc-Timeout header. Response metadata
// from the services is not turned into HTTP headers.
//
// This package does not own the HTTP server (timeouts, TLS, listeners); the
// member that mounts the handler does.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/oracle/dashboard"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is
// zero: 1 MiB, well above the largest request (a proof submission).
const DefaultMaxBodyBytes = 1 << 20

// ForwardedHeaders are the only HTTP request headers passed to the gRPC
// services, as metadata with lower-case keys.
var ForwardedHeaders = []string{"X-Request-Id", "Authorization"}

// Options configures the handler. A nil *Options means all defaults.
type Options struct {
	// Health reports the member's health for /healthz: nil error means
	// serving. Default: AdminService.GetHealth on the connection, healthy
	// when its status is "serving".
	Health func(ctx context.Context) error

	// Metrics is gathered for /metrics in addition to the handler's own HTTP
	// request metrics. Default: none (only the HTTP metrics).
	Metrics prometheus.Gatherer

	// MaxBodyBytes caps request bodies; larger requests get 413.
	// Default DefaultMaxBodyBytes. Negative is invalid.
	MaxBodyBytes int64

	// AllowedOrigins enables CORS for exactly these origins
	// (scheme://host[:port], no path, no trailing slash; "*" is not
	// accepted). Default: none, CORS off, so browsers only allow the
	// dashboard's own origin.
	AllowedOrigins []string

	// Dashboard is served at "/" and everything the REST API and the fixed
	// endpoints do not claim. Default: dashboard.Handler().
	Dashboard http.Handler

	// DisableDashboard serves no dashboard; "/" answers 404.
	DisableDashboard bool

	// Logger receives internal errors that were hidden from clients.
	// Default: slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	var errs []error
	if o.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("httpapi: MaxBodyBytes is %d; use a positive limit, or 0 for the default of %d", o.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	for _, origin := range o.AllowedOrigins {
		if err := validateOrigin(origin); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Dashboard != nil && o.DisableDashboard {
		errs = append(errs, errors.New("httpapi: both Dashboard and DisableDashboard are set; set one"))
	}
	return errors.Join(errs...)
}

func validateOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(origin, "/") {
		return fmt.Errorf("httpapi: allowed origin %q is not of the form scheme://host[:port] (e.g. https://dash.example.org)", origin)
	}
	return nil
}

// New returns the HTTP handler of a member. conn is a connection to the
// member's own gRPC server; ctx bounds the gateway's registrations and should
// live as long as the handler.
func New(ctx context.Context, conn grpc.ClientConnInterface, opts *Options) (http.Handler, error) {
	if conn == nil {
		return nil, errors.New("httpapi: nil gRPC connection")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Health == nil {
		o.Health = adminHealth(truegpuv1.NewAdminServiceClient(conn))
	}
	if o.Dashboard == nil && !o.DisableDashboard {
		o.Dashboard = dashboard.Handler()
	}

	m := newMetrics()
	eh := &errorHandler{log: o.Logger}
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}),
		runtime.WithErrorHandler(eh.handle),
		runtime.WithStreamErrorHandler(eh.stream),
		runtime.WithRoutingErrorHandler(eh.routing),
		runtime.WithIncomingHeaderMatcher(matchForwardedHeader),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMiddlewares(recordRoute),
		runtime.WithForwardResponseOption(openStream),
	)
	regs := []struct {
		name string
		fn   func() error
	}{
		{"ReputationService", func() error {
			return truegpuv1.RegisterReputationServiceHandlerClient(ctx, gw, truegpuv1.NewReputationServiceClient(conn))
		}},
		{"FeedService", func() error {
			return truegpuv1.RegisterFeedServiceHandlerClient(ctx, gw, truegpuv1.NewFeedServiceClient(conn))
		}},
		{"AdminService", func() error {
			return truegpuv1.RegisterAdminServiceHandlerClient(ctx, gw, truegpuv1.NewAdminServiceClient(conn))
		}},
		{"NodeService", func() error {
			return truegpuv1.RegisterNodeServiceHandlerClient(ctx, gw, truegpuv1.NewNodeServiceClient(conn))
		}},
	}
	conn = earlyHeaderConn{conn}
	for _, r := range regs {
		if err := r.fn(); err != nil {
			return nil, fmt.Errorf("httpapi: register %s gateway: %w", r.name, err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.Handle("GET /healthz", routed("/healthz", healthHandler(o.Health)))
	mux.Handle("GET /openapi.json", routed("/openapi.json", openAPIHandler()))
	gatherers := prometheus.Gatherers{m.registry}
	if o.Metrics != nil {
		gatherers = append(gatherers, o.Metrics)
	}
	mux.Handle("GET /metrics", routed("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorLog: slogPrinter{o.Logger}})))
	if o.Dashboard != nil {
		mux.Handle("/", routed("dashboard", o.Dashboard))
	} else {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeJSONError(w, http.StatusNotFound, 5, "no such resource: "+r.URL.Path)
		})
	}

	var h http.Handler = mux
	h = limitBody(h, o.MaxBodyBytes)
	h = cors(h, o.AllowedOrigins)
	h = m.instrument(h)
	return h, nil
}

// openStream sends a stream's response headers at once (the gateway calls
// forward-response options with a nil message before a stream's first
// message; unary responses never pass nil). Without it a client of
// GET /v1/watch/scores would see no response until the first change, and
// could not tell an open, quiet stream from a stuck one. An error that ends a
// stream then arrives as a final {"error": {...}} line under status 200.
func openStream(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if m != nil {
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("httpapi: flush stream headers: %w", err)
	}
	return nil
}

// earlyHeaderConn makes server streams' Header() return at once. The
// generated gateway code waits for a stream's response headers before it
// answers the HTTP request, and a gRPC server sends them only with its first
// message unless it calls SendHeader; a quiet watch stream would leave the
// HTTP client without a response. Response metadata is not forwarded to HTTP
// clients (see the outgoing header matcher), so nothing is lost.
type earlyHeaderConn struct{ grpc.ClientConnInterface }

func (c earlyHeaderConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := c.ClientConnInterface.NewStream(ctx, desc, method, opts...)
	if err != nil || !desc.ServerStreams {
		return s, err
	}
	return earlyHeaderStream{s}, nil
}

type earlyHeaderStream struct{ grpc.ClientStream }

func (earlyHeaderStream) Header() (metadata.MD, error) { return metadata.MD{}, nil }

// matchForwardedHeader is the gateway's incoming header matcher: only
// ForwardedHeaders pass, as lower-case metadata keys. Authorization is left
// out here because the gateway always forwards it on its own; matching it
// too would send it twice.
func matchForwardedHeader(key string) (string, bool) {
	for _, h := range ForwardedHeaders {
		if strings.EqualFold(key, h) && !strings.EqualFold(h, "Authorization") {
			return strings.ToLower(h), true
		}
	}
	return "", false
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("httpapi: metrics", "error", fmt.Sprint(v...)) }
