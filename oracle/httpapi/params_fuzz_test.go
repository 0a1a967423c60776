package httpapi

import (
	"strings"
	"testing"
)

// FuzzParameterMessage: whatever text a parse error carries, the message a
// client sees does not begin with the parser's own words and names no Go
// parser outside the client's own quoted value; messages that are not
// parse errors pass through untouched.
func FuzzParameterMessage(f *testing.F) {
	f.Add(`type mismatch, parameter: epoch, error: strconv.ParseUint: parsing "abc": invalid syntax`)
	f.Add(`parsing field "page_size": strconv.ParseInt: parsing "99999999999": value out of range`)
	f.Add(`parsing field "status": "FOO" is not a valid value`)
	f.Add("proto:\u00a0(line 1:12): invalid value for string field address: 1")
	f.Add("unexpected EOF")
	f.Add(`node 0x01 is not registered`)
	f.Fuzz(func(t *testing.T, msg string) {
		out, ok := parameterMessage(msg)
		if !ok {
			if out != "" {
				t.Fatalf("untouched message came with a replacement %q", out)
			}
			return
		}
		for _, prefix := range []string{"type mismatch", "parsing field", "proto:", "strconv."} {
			if strings.HasPrefix(out, prefix) {
				t.Fatalf("%q -> %q keeps the parser's prefix", msg, out)
			}
		}
		if !strings.Contains(msg, `"`) && strings.Contains(out, "strconv.") {
			t.Fatalf("%q -> %q names the Go parser", msg, out)
		}
		if len(out) > len(msg)+200 {
			t.Fatalf("%q -> %q grew", msg, out)
		}
	})
}
