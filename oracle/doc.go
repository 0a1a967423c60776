// Package oracle owns a TrueGPU cluster member: Raft replication
// (hashicorp/raft) with the log, stable store and state machine on Pebble,
// challenge scheduling, the verification pipeline, and the gRPC, REST and
// dashboard servers.
//
// Scoring rules belong to package reputation and proof checking to package
// verifier; the oracle sequences them and replicates the outcome.
//
// # Files
//
// The member and its configuration:
//
//	member.go       Member, Start, Close; leadership queries, Barrier, Propose
//	config.go       Config, PipelineConfig, ScheduleConfig: defaults, Validate
//	errors.go       the member's errors, request refusals (Err*), their reason codes and Reason
//	proposer.go     batching of commands into log entries
//	leader.go       leader-only work started and stopped on Raft's leadership changes (NotifyCh)
//	membership.go   Join, Remove, the member table and this member's own row
//	raftlog.go      Raft's logger bridged into slog
//	metrics.go      Prometheus metrics
//	gc.go           the garbage collector target
//
// The leader's verification pipeline, in protocol order:
//
//	pipeline.go     the pipeline's state and request size caps
//	admission.go    signatures, registration (Register), admission of new nodes, admit, signed polls
//	ratelimit.go    the per-node token bucket
//	replay.go       cluster binding and replay refusal of signed requests
//	submit.go       commitment, walk and proof submission; verdict proposal
//	openings.go     native checks of timed and walk openings
//	verifyqueue.go  the bounded queue and batched Groth16 verification
//
// The pipeline and the scheduler read the replicated state through small
// interfaces (pipelineState, scheduleState: *fsm.FSM on a member) and
// replicate through commandProposer (Member.Propose), so they run without
// Raft over stand-ins.
//
// Scheduling and epochs (leader only):
//
//	scheduler.go    due-time heap, ticks: expiry and issue of due challenges
//	challenge.go    one challenge sized from the device's claimed class
//	storm.go        storm groups (identity contests, suspects) and storms, random storms
//	epoch.go        epoch close and the cluster's report mode
//
// Every member:
//
//	audit.go        re-verification of a closed epoch's verdicts
//	signing.go      the audit loop, signing reports, handing signatures to the leader
//
// The API. Writes are served by the leader; a follower forwards them (once)
// to the leader it knows. Reads say how they were served in ReadInfo: stale
// reads come from the local replica, linearizable ones from the leader
// after VerifyLeader and Barrier.
//
//	grpc.go                the gRPC server, error-to-status mapping, member-only methods
//	node_service.go        NodeService
//	reputation_service.go  ReputationService (GetNode, WatchScores)
//	listing.go             ReputationService ListNodes, GetFleetStats, page tokens
//	feed_service.go        FeedService
//	admin_service.go       AdminService, Health
//	member_service.go      MemberService (report signatures)
//	views.go               API views (challenge, node, verdict, summary) and read consistency
//	forward.go             forwarding to the leader, connections to other members
//	identity.go            who may make member-only calls
//	redact.go              device identifiers shown as digests
//	localconn.go           in-process connection for the REST gateway
//
// The fault campaign's planted defect (package oracle/chaos):
//
//	plant.go, plant_chaosplant.go  off in every build but one with the chaosplant tag
package oracle
