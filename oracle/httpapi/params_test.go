package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestParameterErrors: values the gateway cannot parse are a 400 whose
// message names the parameter and what it should be, never the Go parser's
// own text.
func TestParameterErrors(t *testing.T) {
	_, srv := setup(t, nil)
	tests := []struct {
		method, path, body string
		want               string
	}{
		{"GET", "/v1/feed/epochs/abc", "", `invalid parameter epoch: "abc" is not an unsigned integer`},
		{"GET", "/v1/feed/epochs/18446744073709551616", "", "is out of range for an unsigned integer"},
		{"GET", "/v1/nodes?page_size=x", "", `invalid parameter page_size: "x" is not an integer`},
		{"GET", "/v1/nodes?page_size=99999999999", "", "out of range"},
		{"GET", "/v1/nodes?page_size=-1", "", "page_size"},
		{"GET", "/v1/nodes?min_score_bp=-1", "", `invalid parameter min_score_bp: "-1" is not an unsigned integer`},
		{"GET", "/v1/feed/latest?include_incomplete=maybe", "", "is not true or false"},
		{"GET", "/v1/nodes?status=FOO", "", `invalid parameter status: "FOO" is not a valid value`},
		{"GET", "/v1/nodes?page_size=" + strings.Repeat("9", 200), "", "..."},
		{"POST", "/v1/nodes:register", `{"address":1}`, "invalid request body:"},
		{"POST", "/v1/nodes:register", `{"address":`, "invalid request body: the JSON ends early"},
	}
	for _, tt := range tests {
		t.Run(tt.path+tt.body, func(t *testing.T) {
			var req *http.Request
			var err error
			if tt.method == "POST" {
				req, err = http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			} else {
				req, err = http.NewRequest(tt.method, srv.URL+tt.path, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, b := do(t, req)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", resp.StatusCode, b)
			}
			var body struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			for _, internal := range []string{"strconv", "proto:", "type mismatch", "parsing field", "syntax error"} {
				if strings.Contains(body.Message, internal) {
					t.Errorf("message %q echoes parser internals (%q)", body.Message, internal)
				}
			}
			if !strings.Contains(body.Message, tt.want) {
				t.Errorf("message %q does not contain %q", body.Message, tt.want)
			}
			if len(body.Message) > 200 {
				t.Errorf("message is %d bytes long", len(body.Message))
			}
		})
	}
}
