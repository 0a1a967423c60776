package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/oracle/httpapi"
	"github.com/truegpu/truegpu/oracle/httpapi/apitest"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// setup serves the fixture over real gRPC and the handler over real HTTP,
// both on 127.0.0.1.
func setup(t *testing.T, opts *httpapi.Options) (*apitest.Fixture, *httptest.Server) {
	t.Helper()
	f := apitest.New()
	_, conn := apitest.Serve(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if opts == nil {
		opts = &httpapi.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler) // hidden internal errors are logged; keep test output clean
	}
	h, err := httpapi.New(ctx, conn, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return f, srv
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, body)
	}
	return m
}

func TestRoutes(t *testing.T) {
	f, srv := setup(t, nil)
	addr := f.Addresses()[3]
	node := f.Node(addr)
	tests := []struct {
		name, method, path string
		wantStatus         int
		check              func(t *testing.T, m map[string]any)
	}{
		{"list nodes", "GET", "/v1/nodes", 200, func(t *testing.T, m map[string]any) {
			if n := len(m["nodes"].([]any)); n != apitest.NumNodes {
				t.Errorf("got %d nodes, want %d", n, apitest.NumNodes)
			}
			if m["totalSize"].(float64) != apitest.NumNodes {
				t.Errorf("totalSize = %v", m["totalSize"])
			}
		}},
		{"list nodes filtered and paged", "GET", "/v1/nodes?status=NODE_STATUS_REJECTED&page_size=4&order_by=score%20desc", 200, func(t *testing.T, m map[string]any) {
			nodes := m["nodes"].([]any)
			if len(nodes) != 4 || m["totalSize"].(float64) != apitest.NumRejected || m["nextPageToken"] == "" {
				t.Errorf("got %d nodes, total %v, next %q", len(nodes), m["totalSize"], m["nextPageToken"])
			}
			prev := 1e9
			for _, n := range nodes {
				n := n.(map[string]any)
				if n["status"] != "NODE_STATUS_REJECTED" {
					t.Errorf("status %v in a rejected-only listing", n["status"])
				}
				if s := n["scoreBp"].(float64); s > prev {
					t.Errorf("not ordered by score desc: %v after %v", s, prev)
				} else {
					prev = s
				}
			}
		}},
		{"list nodes by class", "GET", "/v1/nodes?class=H200&minScoreBp=5000", 200, func(t *testing.T, m map[string]any) {
			for _, n := range m["nodes"].([]any) {
				n := n.(map[string]any)
				if n["classes"].([]any)[0] != "H200" || n["scoreBp"].(float64) < 5000 {
					t.Errorf("row %v does not match class=H200, min score 5000", n)
				}
			}
			if len(m["nodes"].([]any)) == 0 {
				t.Error("no H200 nodes with score >= 50%")
			}
		}},
		{"get node, lower-case address", "GET", "/v1/nodes/" + strings.ToLower(addr), 200, func(t *testing.T, m map[string]any) {
			n := m["node"].(map[string]any)
			if n["address"] != addr {
				t.Errorf("address = %v, want %v", n["address"], addr)
			}
			if got := len(n["recentChallenges"].([]any)); got != len(node.GetRecentChallenges()) {
				t.Errorf("%d challenges, want %d", got, len(node.GetRecentChallenges()))
			}
			if m["read"].(map[string]any)["servedBy"] != apitest.ServedBy {
				t.Errorf("read = %v", m["read"])
			}
		}},
		{"fleet", "GET", "/v1/fleet", 200, func(t *testing.T, m map[string]any) {
			bs := m["byStatus"].(map[string]any)
			if bs["rejected"].(float64) != apitest.NumRejected || bs["trusted"].(float64) != apitest.NumTrusted {
				t.Errorf("byStatus = %v", bs)
			}
			if len(m["timeline"].([]any)) != 24 {
				t.Errorf("timeline has %d points", len(m["timeline"].([]any)))
			}
		}},
		{"latest report", "GET", "/v1/feed/latest", 200, func(t *testing.T, m map[string]any) {
			r := m["report"].(map[string]any)
			if r["epoch"] != "42" || r["complete"] != true || len(r["signatures"].([]any)) != 2 {
				t.Errorf("report = %v", r)
			}
		}},
		{"latest report incl. incomplete", "GET", "/v1/feed/latest?include_incomplete=true", 200, func(t *testing.T, m map[string]any) {
			if r := m["report"].(map[string]any); r["epoch"] != "43" || r["complete"] != false {
				t.Errorf("report = %v", r)
			}
		}},
		{"report by epoch emits zero fields", "GET", "/v1/feed/epochs/41", 200, func(t *testing.T, m map[string]any) {
			r := m["report"].(map[string]any)
			if v, ok := r["round"]; !ok || v != "0" {
				t.Errorf("round = %v, %v; unpopulated fields must be emitted", v, ok)
			}
		}},
		{"node proof", "GET", "/v1/feed/epochs/42/nodes/" + addr + "/proof", 200, func(t *testing.T, m map[string]any) {
			if m["address"] != addr || len(m["proof"].([]any)) == 0 || m["epoch"] != "42" {
				t.Errorf("proof = %v", m)
			}
		}},
		{"cluster", "GET", "/v1/cluster", 200, func(t *testing.T, m map[string]any) {
			if m["leaderId"] != "oracle-1" || len(m["members"].([]any)) != 3 {
				t.Errorf("cluster = %v", m)
			}
		}},
		{"health", "GET", "/v1/health", 200, func(t *testing.T, m map[string]any) {
			if m["status"] != "serving" {
				t.Errorf("health = %v", m)
			}
		}},
		{"node API is routed (register)", "POST", "/v1/nodes:register", 501, nil},
		{"node API is routed (commitment)", "POST", "/v1/challenges/0xab/commitment", 501, nil},
		{"node API is routed (proof)", "POST", "/v1/challenges/0xab/proof", 501, nil},
		{"node API is routed (poll)", "POST", "/v1/nodes/0xab/challenges:poll", 501, nil},
		{"unknown REST path", "GET", "/v1/nope", 404, nil},
		{"wrong method", "DELETE", "/v1/nodes", 405, nil},
		{"no REST mapping for JoinMember", "POST", "/v1/cluster/members", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader(`{}`)
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, b := do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			m := decode(t, b)
			if tt.check != nil {
				tt.check(t, m)
			} else if _, ok := m["code"]; !ok || m["message"] == "" {
				t.Errorf("error body %s lacks code and message", b)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	f, srv := setup(t, nil)
	const secret = "pebble: corrupted sstable /var/lib/truegpu/000123.sst"
	tests := []struct {
		name        string
		err         error
		path        string
		wantStatus  int
		wantCode    codes.Code
		wantMessage string // substring; "" means the generic message
	}{
		{"not found", nil, "/v1/nodes/0x0000000000000000000000000000000000000001", 404, codes.NotFound, "is not registered"},
		{"invalid argument from service", nil, "/v1/nodes/not-an-address", 400, codes.InvalidArgument, "not a 0x-prefixed"},
		{"invalid argument from gateway", nil, "/v1/feed/epochs/abc", 400, codes.InvalidArgument, "epoch"},
		{"internal is hidden", status.Error(codes.Internal, secret), "/v1/cluster", 500, codes.Internal, ""},
		{"unknown is hidden", errors.New(secret), "/v1/cluster", 500, codes.Unknown, ""},
		{"data loss is hidden", status.Error(codes.DataLoss, secret), "/v1/cluster", 500, codes.DataLoss, ""},
		{"unavailable keeps message", status.Error(codes.Unavailable, "no leader; retry in a few seconds"), "/v1/cluster", 503, codes.Unavailable, "no leader"},
		{"permission denied", status.Error(codes.PermissionDenied, "not allowed"), "/v1/cluster", 403, codes.PermissionDenied, "not allowed"},
		{"failed precondition", status.Error(codes.FailedPrecondition, "not the leader"), "/v1/cluster", 400, codes.FailedPrecondition, "not the leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.FailWith("GetCluster", tt.err)
			defer f.FailWith("GetCluster", nil)
			resp, b := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, b)
			}
			var body struct {
				Code    codes.Code `json:"code"`
				Message string     `json:"message"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if body.Code != tt.wantCode {
				t.Errorf("code %v, want %v", body.Code, tt.wantCode)
			}
			if strings.Contains(string(b), "pebble") || strings.Contains(string(b), "/var/lib") {
				t.Errorf("internal detail leaked: %s", b)
			}
			if tt.wantMessage == "" {
				if !strings.Contains(body.Message, "internal error") {
					t.Errorf("message %q, want the generic message", body.Message)
				}
			} else if !strings.Contains(body.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", body.Message, tt.wantMessage)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	_, srv := setup(t, &httpapi.Options{MaxBodyBytes: 1024})
	big := bytes.Repeat([]byte("a"), 4096)
	tests := []struct {
		name       string
		body       io.Reader
		length     int64 // -1: chunked, no Content-Length
		wantStatus int
	}{
		{"small body reaches the gateway", strings.NewReader(`{"address":"0x01"}`), 18, 501},
		{"declared too large", bytes.NewReader(big), int64(len(big)), 413},
		{"chunked too large", io.MultiReader(bytes.NewReader(big)), -1, 413},
		{"exactly the limit", bytes.NewReader(bytes.Repeat([]byte(" "), 1024)), 1024, 501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", srv.URL+"/v1/nodes:register", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tt.length
			resp, b := do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, b)
			}
			m := decode(t, b)
			if tt.wantStatus == 413 && !strings.Contains(m["message"].(string), "1024 bytes") {
				t.Errorf("413 message %q does not name the limit", m["message"])
			}
		})
	}
}

func TestCORS(t *testing.T) {
	const origin = "https://dash.example.org"
	_, off := setup(t, nil)
	_, on := setup(t, &httpapi.Options{AllowedOrigins: []string{origin}})
	preflight := func(srv *httptest.Server, o string) *http.Request {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/v1/nodes", nil)
		req.Header.Set("Origin", o)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "x-request-id")
		return req
	}
	simple := func(srv *httptest.Server, o string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/cluster", nil)
		req.Header.Set("Origin", o)
		return req
	}
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantACAO   string
	}{
		{"off: simple request gets no CORS headers", simple(off, origin), 200, ""},
		{"off: preflight is not answered", preflight(off, origin), 405, ""},
		{"on: allowed origin", simple(on, origin), 200, origin},
		{"on: other origin gets no CORS headers", simple(on, "https://evil.example"), 200, ""},
		{"on: origin match is exact", simple(on, origin+":443"), 200, ""},
		{"on: preflight of allowed origin", preflight(on, origin), 204, origin},
		{"on: preflight of other origin", preflight(on, "https://evil.example"), 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, tt.req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, b)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.wantACAO)
			}
			if tt.wantStatus == 204 {
				if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "GET") {
					t.Errorf("Allow-Methods %q", m)
				}
				if h := resp.Header.Get("Access-Control-Allow-Headers"); !strings.Contains(h, "X-Request-Id") {
					t.Errorf("Allow-Headers %q", h)
				}
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    httpapi.Options
		wantErr []string
	}{
		{"defaults", httpapi.Options{}, nil},
		{"good origins", httpapi.Options{AllowedOrigins: []string{"https://a.example", "http://127.0.0.1:3000"}}, nil},
		{"bad everything", httpapi.Options{
			MaxBodyBytes:   -1,
			AllowedOrigins: []string{"*", "https://a.example/", "ftp://x", "https://a.example/path"},
		}, []string{"MaxBodyBytes", `"*"`, `"https://a.example/"`, `"ftp://x"`, `"https://a.example/path"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
	if _, err := httpapi.New(context.Background(), nil, nil); err == nil {
		t.Error("New accepted a nil connection")
	}
}

func TestHeaderAllowlist(t *testing.T) {
	f, srv := setup(t, nil)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/cluster", nil)
	req.Header.Set("X-Request-Id", "req-42")
	req.Header.Set("Authorization", "Bearer token-1")
	req.Header.Set("Cookie", "session=secret")
	req.Header.Set("X-Internal-Admin", "yes")
	req.Header.Set("Grpc-Metadata-Role", "admin")
	if resp, b := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	md := f.LastMetadata()
	tests := []struct {
		key  string
		want []string
	}{
		{"x-request-id", []string{"req-42"}},
		{"authorization", []string{"Bearer token-1"}},
		{"cookie", nil},
		{"x-internal-admin", nil},
		{"role", nil},
		{"grpc-metadata-role", nil},
	}
	for _, tt := range tests {
		got := md.Get(tt.key)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("metadata %q = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestHealthz(t *testing.T) {
	t.Run("default uses GetHealth", func(t *testing.T) {
		f, srv := setup(t, nil)
		resp, b := get(t, srv.URL+"/healthz")
		if resp.StatusCode != 200 || decode(t, b)["status"] != "serving" {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		f.SetHealth(&truegpuv1.GetHealthResponse{Status: "degraded", Problems: []string{"no leader for 12s"}})
		resp, b = get(t, srv.URL+"/healthz")
		if resp.StatusCode != 503 || !strings.Contains(decode(t, b)["message"].(string), "no leader for 12s") {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
	t.Run("custom check", func(t *testing.T) {
		_, srv := setup(t, &httpapi.Options{Health: func(context.Context) error { return errors.New("raft log store closed") }})
		resp, b := get(t, srv.URL+"/healthz")
		if resp.StatusCode != 503 || decode(t, b)["status"] != "degraded" {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "truegpu_test_member_counter", Help: "test"})
	reg.MustRegister(c)
	c.Add(7)
	f, srv := setup(t, &httpapi.Options{Metrics: reg})
	get(t, srv.URL+"/v1/nodes/"+f.Addresses()[0])
	get(t, srv.URL+"/v1/nodes/0x0000000000000000000000000000000000000001")
	get(t, srv.URL+"/healthz")
	get(t, srv.URL+"/no/such/page")
	resp, b := get(t, srv.URL+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`truegpu_http_requests_total{code="200",method="GET",route="/v1/nodes/{address}"} 1`,
		`truegpu_http_requests_total{code="404",method="GET",route="/v1/nodes/{address}"} 1`,
		`truegpu_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`truegpu_http_requests_total{code="404",method="GET",route="dashboard"} 1`,
		`truegpu_http_request_duration_seconds_count{method="GET",route="/v1/nodes/{address}"} 2`,
		`truegpu_test_member_counter 7`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s\n%s", want, b)
		}
	}
}

func TestOpenAPI(t *testing.T) {
	_, srv := setup(t, nil)
	resp, b := get(t, srv.URL+"/openapi.json")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	m := decode(t, b)
	if _, ok := m["paths"].(map[string]any)["/v1/nodes/{address}"]; !ok {
		t.Error("OpenAPI document lacks /v1/nodes/{address}")
	}
}

// TestOpenAPICopyIsCurrent fails when the embedded copy differs from the
// generated document; run "go generate ./oracle/httpapi" to refresh it.
func TestOpenAPICopyIsCurrent(t *testing.T) {
	want, err := os.ReadFile("../../docs/api/truegpu.swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("oracle/httpapi/openapi.json differs from docs/api/truegpu.swagger.json; run go generate ./oracle/httpapi")
	}
}

func TestDashboardMounted(t *testing.T) {
	_, srv := setup(t, nil)
	tests := []struct {
		path, wantType string
		wantStatus     int
	}{
		{"/", "text/html; charset=utf-8", 200},
		{"/ui/app.js", "text/javascript; charset=utf-8", 200},
		{"/ui/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8", 200},
		{"/favicon.ico", "", 404},
	}
	for _, tt := range tests {
		resp, _ := get(t, srv.URL+tt.path)
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("%s: status %d, want %d", tt.path, resp.StatusCode, tt.wantStatus)
		}
		if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
			t.Errorf("%s: Content-Type %q, want %q", tt.path, resp.Header.Get("Content-Type"), tt.wantType)
		}
	}

	_, none := setup(t, &httpapi.Options{DisableDashboard: true})
	if resp, _ := get(t, none.URL+"/"); resp.StatusCode != 404 {
		t.Errorf("DisableDashboard: / answered %d", resp.StatusCode)
	}
}

// TestWatchStream checks that the server stream reaches the HTTP client as
// newline-delimited JSON, one {"result": ...} object per change, as it
// happens.
func TestWatchStream(t *testing.T) {
	f, srv := setup(t, nil)
	addrs := f.Addresses()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/watch/scores?addresses="+addrs[0]+"&addresses="+addrs[2], nil)
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		done <- result{resp, err}
	}()
	// The headers arrive before any change: the stream is open.
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.resp.Body.Close()
	if r.resp.StatusCode != 200 || r.resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", r.resp.StatusCode, r.resp.Header.Get("Content-Type"))
	}
	for f.WatcherCount() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the watch stream never reached the gRPC service")
		case <-time.After(10 * time.Millisecond):
		}
	}
	changes := []*truegpuv1.ScoreChange{
		{Address: addrs[0], NewScoreBp: 4100, NewStatus: truegpuv1.NodeStatus_NODE_STATUS_SUSPECT, Reason: "LIVENESS_MISSED", AtUnixMs: 1},
		{Address: addrs[1], NewScoreBp: 1, NewStatus: truegpuv1.NodeStatus_NODE_STATUS_REJECTED, AtUnixMs: 2}, // filtered out
		{Address: addrs[2], NewScoreBp: 9900, NewStatus: truegpuv1.NodeStatus_NODE_STATUS_TRUSTED, AtUnixMs: 3},
	}
	for _, c := range changes {
		f.Publish(c)
	}
	sc := bufio.NewScanner(r.resp.Body)
	want := []struct {
		addr   string
		score  float64
		status string
	}{{addrs[0], 4100, "NODE_STATUS_SUSPECT"}, {addrs[2], 9900, "NODE_STATUS_TRUSTED"}}
	for i, w := range want {
		if !sc.Scan() {
			t.Fatalf("line %d: stream ended: %v", i, sc.Err())
		}
		var line struct {
			Result struct {
				Change map[string]any `json:"change"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d %q is not JSON: %v", i, sc.Text(), err)
		}
		c := line.Result.Change
		if c["address"] != w.addr || c["newScoreBp"] != w.score || c["newStatus"] != w.status {
			t.Errorf("line %d: change %v, want %v", i, c, w)
		}
	}
}

// FuzzHandler feeds arbitrary paths, queries and bodies to the REST API: the
// handler must answer with JSON (or a path-cleaning redirect) and never with
// a 500 (nothing here is an internal failure).
func FuzzHandler(f *testing.F) {
	fix := apitest.New()
	_, conn := apitest.Serve(f, fix)
	h, err := httpapi.New(context.Background(), conn, &httpapi.Options{MaxBodyBytes: 4096, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "/v1/nodes", "page_size=2&order_by=score", []byte(nil))
	f.Add("GET", "/v1/nodes/"+fix.Addresses()[0], "consistency=READ_CONSISTENCY_LINEARIZABLE", []byte(nil))
	f.Add("GET", "/v1/feed/epochs/18446744073709551616/nodes/0x00/proof", "", []byte(nil))
	f.Add("GET", "/v1/nodes", "status=7&min_score_bp=-1&page_token=%ff", []byte(nil))
	f.Add("POST", "/v1/nodes:register", "", []byte(`{"address":"0x01","devices":[{"index":1}],"signature":"!!"}`))
	f.Add("POST", "/v1/challenges/x/proof", "", []byte(`{"proof":`))
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		if method != "GET" && method != "POST" {
			method = "GET"
		}
		if !strings.HasPrefix(path, "/v1/") || strings.ContainsAny(path, "?# \t\r\n") {
			return
		}
		req := httptest.NewRequest(method, "http://127.0.0.1/", bytes.NewReader(body))
		req.URL.Path = path
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s?%s: status %d: %s", method, path, query, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusPermanentRedirect {
			// net/http cleans paths such as /v1/./x by redirecting.
			if rec.Header().Get("Location") == "" {
				t.Fatalf("%s %s: redirect without Location", method, path)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s?%s: status %d, body is not JSON: %q", method, path, query, rec.Code, rec.Body)
		}
	})
}
