package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI is a copy of docs/api/truegpu.swagger.json (go:embed cannot reach
// outside the package); TestOpenAPICopyIsCurrent fails when they differ.
//
//go:generate cp ../../docs/api/truegpu.swagger.json openapi.json
//go:embed openapi.json
var openAPI []byte

func openAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPI)
	})
}
