package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func init() {
	var cf clientFlags
	register(&command{
		Name:  "cluster",
		Usage: "[flags]",
		Short: "show the oracle cluster: members, leader, epoch, health",
		Long: `
Cluster shows the members of the oracle cluster, the leader, Raft term and
indexes, the current and last signed epochs, and the health of the member
that answered.

With -o json the output is {"cluster": GetClusterResponse, "health":
GetHealthResponse} in the REST API's JSON encoding.

Exit status: 0 success (also when the member reports itself degraded; read
"health"), 1 the call failed, 2 bad usage.`,
		Flags: cf.register,
		Run: func(ctx *runContext, args []string) error {
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) > 0 {
				return usageError("cluster takes no arguments")
			}
			var (
				cl *truegpuv1.GetClusterResponse
				h  *truegpuv1.GetHealthResponse
			)
			err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
				admin := truegpuv1.NewAdminServiceClient(conn)
				if cl, err = admin.GetCluster(c, &truegpuv1.GetClusterRequest{}); err != nil {
					return cf.rpcErr("get cluster", err)
				}
				h, err = admin.GetHealth(c, &truegpuv1.GetHealthRequest{})
				return cf.rpcErr("get health", err)
			})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSONObject(ctx, map[string]proto.Message{"cluster": cl, "health": h})
			}
			t := newTable(ctx.Stdout)
			t.row("Leader:", orDash(cl.GetLeaderId()))
			t.row("Term:", strconv.FormatUint(cl.GetTerm(), 10))
			t.row("Commit index:", strconv.FormatUint(cl.GetCommitIndex(), 10))
			t.row("Applied index:", strconv.FormatUint(cl.GetAppliedIndex(), 10))
			t.row("Current epoch:", strconv.FormatUint(cl.GetCurrentEpoch(), 10))
			t.row("Last signed epoch:", strconv.FormatUint(cl.GetLastCompleteEpoch(), 10))
			t.row("Report threshold:", fmt.Sprintf("%d of %d", cl.GetReportThreshold(), len(cl.GetMembers())))
			t.row("Nodes:", strconv.Itoa(int(cl.GetNodeCount())))
			t.row("Served by:", orDash(cl.GetServedBy()))
			health := h.GetStatus()
			if len(h.GetProblems()) > 0 {
				health += " (" + strings.Join(h.GetProblems(), "; ") + ")"
			}
			t.row("Health:", fmt.Sprintf("%s, raft %s, applied %d", health, orDash(h.GetRaftState()), h.GetAppliedIndex()))
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(ctx.Stdout)
			t = newTable(ctx.Stdout, "ID", "ROLE", "SUFFRAGE", "RAFT", "GRPC", "HTTP", "SIGNER")
			for _, m := range cl.GetMembers() {
				role := "follower"
				if m.GetLeader() {
					role = "leader"
				}
				t.row(m.GetId(), role, orDash(m.GetSuffrage()), orDash(m.GetRaftAddress()), orDash(m.GetGrpcAddress()),
					orDash(m.GetHttpAddress()), orDash(m.GetSignerAddress()))
			}
			return t.flush()
		},
	})
}

// printJSONObject writes several messages as one JSON object, each in the
// REST API's encoding.
func printJSONObject(ctx *runContext, parts map[string]proto.Message) error {
	var b strings.Builder
	b.WriteString("{")
	i := 0
	for _, k := range sortedKeys(parts) {
		var sb strings.Builder
		if err := printJSON(&sb, parts[k]); err != nil {
			return err
		}
		if i > 0 {
			b.WriteString(",")
		}
		i++
		fmt.Fprintf(&b, "\n  %q: %s", k, strings.ReplaceAll(strings.TrimSpace(sb.String()), "\n", "\n  "))
	}
	b.WriteString("\n}\n")
	_, err := fmt.Fprint(ctx.Stdout, b.String())
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
