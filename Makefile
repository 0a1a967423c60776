# Developer entry points. The two that matter:
#   go run ./cmd/oracled dev     run a whole cluster and a simulated fleet
#   make test                    run the test suite (what CI runs)

GOBIN_DIR := $(CURDIR)/.bin
BUF := $(GOBIN_DIR)/buf
TOOLS := $(BUF) $(GOBIN_DIR)/protoc-gen-go $(GOBIN_DIR)/protoc-gen-go-grpc \
	$(GOBIN_DIR)/protoc-gen-grpc-gateway $(GOBIN_DIR)/protoc-gen-openapiv2

.PHONY: generate tools geth lint test vet

# tools installs buf and the protoc plugins at the versions pinned in tools/go.mod.
tools:
	cd tools && GOBIN=$(GOBIN_DIR) go install \
		github.com/bufbuild/buf/cmd/buf \
		google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2

# geth builds go-ethereum's geth at the version pinned in tools/go.mod into
# .bin/geth: the dev chain of the relayer's end-to-end tests (about 15
# minutes measured on 2 shared cores the first time, fast once the Go build
# cache is warm).
geth:
	cd tools && GOBIN=$(GOBIN_DIR) go install github.com/ethereum/go-ethereum/cmd/geth

# generate regenerates every generated file: Go protobuf, gRPC, gateway and
# the OpenAPI document (and the copy the REST server embeds).
generate: tools
	$(BUF) lint
	rm -f proto/truegpu/v1/*.pb.go proto/truegpu/v1/*.pb.gw.go docs/api/*.swagger.json
	PATH=$(GOBIN_DIR):$$PATH $(BUF) generate
	cp docs/api/truegpu.swagger.json oracle/httpapi/openapi.json

lint: tools
	$(BUF) lint

vet:
	go vet ./...

test:
	go test ./...
