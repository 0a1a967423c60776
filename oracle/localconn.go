package oracle

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// LocalConn returns a gRPC client connection to m's own services that
// serves unary calls in process: the call goes straight to the service
// implementation, with the same request size cap and the same error mapping
// (ToStatus) as NewGRPCServer, skipping the loopback network, HTTP/2
// framing and the two protobuf encodings of a real call. Streams, and the
// member-only methods that must see the caller's TLS certificate, go to
// remote, a connection to m's gRPC server.
//
// The REST gateway uses it: a REST read then costs one service call and
// one JSON encoding. Outgoing metadata of the caller's context becomes the
// incoming metadata the service sees, as on the wire.
func LocalConn(m *Member, remote grpc.ClientConnInterface) grpc.ClientConnInterface {
	c := &localConn{log: m.log, remote: remote, methods: map[string]localMethod{}}
	for _, svc := range publicServices(m) {
		for _, md := range svc.desc.Methods {
			name := "/" + svc.desc.ServiceName + "/" + md.MethodName
			if memberOnlyMethods[name] {
				continue
			}
			c.methods[name] = localMethod{srv: svc.impl, handler: md.Handler}
		}
	}
	return c
}

type localMethod struct {
	srv     any
	handler grpc.MethodHandler
}

type localConn struct {
	log     *slog.Logger
	remote  grpc.ClientConnInterface
	methods map[string]localMethod
}

// Invoke serves a unary call in process, or passes it to the remote
// connection when it is not one of the local methods.
func (c *localConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	lm, ok := c.methods[method]
	if !ok {
		return c.remote.Invoke(ctx, method, args, reply, opts...)
	}
	in, ok1 := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok1 || !ok2 {
		return status.Errorf(codes.Internal, "oracle: local call %s: arguments are not protobuf messages", method)
	}
	if n := proto.Size(in); n > MaxRequestBytes {
		return status.Errorf(codes.ResourceExhausted, "request of %d bytes is larger than the limit of %d bytes", n, MaxRequestBytes)
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	dec := func(v any) error {
		req, ok := v.(proto.Message)
		if !ok {
			return fmt.Errorf("oracle: local call %s: request type %T", method, v)
		}
		proto.Merge(req, in)
		return nil
	}
	resp, err := lm.handler(lm.srv, ctx, dec, nil)
	if err != nil {
		return ToStatus(c.log, method, err)
	}
	msg, ok := resp.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "oracle: local call %s: response type %T", method, resp)
	}
	proto.Reset(out)
	proto.Merge(out, msg)
	return nil
}

// NewStream opens a stream on the remote connection.
func (c *localConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.remote.NewStream(ctx, desc, method, opts...)
}
