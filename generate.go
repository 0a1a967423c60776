package truegpu

// Regenerate the protobuf, gRPC, gateway and OpenAPI code (see Makefile).
//go:generate make generate
