//go:build tools

// Package tools pins the code generators used by `make generate` and the geth
// binary that the relayer's end-to-end test runs as a dev chain (`make geth`).
// It lives in its own module so that their dependencies never constrain the
// main module.
package tools

import (
	_ "github.com/bufbuild/buf/cmd/buf"
	_ "github.com/ethereum/go-ethereum/cmd/geth"
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway"
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)
