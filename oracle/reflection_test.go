package oracle

import (
	"slices"
	"testing"
	"time"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestReflection lists a member's services through gRPC server reflection,
// as grpcurl does, and resolves a service's methods from the descriptors
// the server sends: no .proto files needed on the client.
func TestReflection(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.leader(10 * time.Second)
	stream, err := rpb.NewServerReflectionClient(dialMember(t, c.members[0])).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("reflection error %d: %s", e.ErrorCode, e.ErrorMessage)
		}
		return resp
	}
	var services []string
	for _, s := range ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		services = append(services, s.Name)
	}
	for _, want := range []string{
		"truegpu.v1.NodeService", "truegpu.v1.ReputationService", "truegpu.v1.FeedService",
		"truegpu.v1.AdminService", "truegpu.v1.MemberService", "grpc.health.v1.Health",
		"grpc.reflection.v1.ServerReflection",
	} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection does not list %s; it lists %v", want, services)
		}
	}

	resp := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "truegpu.v1.ReputationService"}})
	var methods []string
	for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fd); err != nil {
			t.Fatal(err)
		}
		for _, s := range fd.GetService() {
			if s.GetName() == "ReputationService" {
				for _, m := range s.GetMethod() {
					methods = append(methods, m.GetName())
				}
			}
		}
	}
	for _, want := range []string{"GetNode", "ListNodes", "WatchScores", "GetFleetStats"} {
		if !slices.Contains(methods, want) {
			t.Errorf("ReputationService descriptor lacks %s; has %v", want, methods)
		}
	}
}
