package oracle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// ErrNotMember reports a metadata refresh from a server that is not in the
// Raft configuration (e.g. one that was removed).
var ErrNotMember = errors.New("oracle: not a member of the cluster")

// Join adds a voter and records its metadata. Leader only.
func (m *Member) Join(ctx context.Context, meta *truegpuv1.SetMemberCommand) (uint64, error) {
	return m.join(ctx, meta, false)
}

func (m *Member) join(ctx context.Context, meta *truegpuv1.SetMemberCommand, refreshOnly bool) (uint64, error) {
	if !m.IsLeader() {
		return 0, m.notLeaderError()
	}
	cf := m.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0, mapRaftError(err)
	}
	present := false
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == meta.Id && string(s.Address) == meta.RaftAddress {
			present = true
		}
	}
	var idx uint64
	if !present && refreshOnly {
		return 0, fmt.Errorf("%w: %s at %s", ErrNotMember, meta.Id, meta.RaftAddress)
	}
	if !present && len(meta.Signature) == 0 && (len(meta.SignerAddress) != 0 || meta.GrpcAddress != "" || meta.HttpAddress != "") {
		return 0, fmt.Errorf("%w: member %s: addresses and signer come in the member's signed row; join with id and Raft address only, and the member publishes its row itself", ErrInvalidRequest, meta.Id)
	}
	if len(meta.Signature) != 0 {
		if err := m.checkRow(meta); err != nil {
			return 0, err
		}
	}
	if !present {
		f := m.raft.AddVoter(raft.ServerID(meta.Id), raft.ServerAddress(meta.RaftAddress), 0, m.cfg.Timing.RaftTimeout)
		if err := f.Error(); err != nil {
			return 0, mapRaftError(err)
		}
		idx = f.Index()
	}
	if len(meta.Signature) == 0 {
		return idx, nil
	}
	i, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_SetMember{SetMember: meta}})
	return max(idx, i), err
}

// Remove removes a member and its metadata. Leader only.
func (m *Member) Remove(ctx context.Context, id string) (uint64, error) {
	if !m.IsLeader() {
		return 0, m.notLeaderError()
	}
	f := m.raft.RemoveServer(raft.ServerID(id), 0, m.cfg.Timing.RaftTimeout)
	if err := f.Error(); err != nil {
		return 0, mapRaftError(err)
	}
	i, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_RemoveMember{RemoveMember: &truegpuv1.RemoveMemberCommand{Id: id}}})
	if errors.Is(err, fsm.ErrNotFound) {
		err = nil
	}
	return max(f.Index(), i), err
}

// checkRow runs the state machine's checks of a signed member row against
// the local member table before anything is changed, so a row that would
// be refused adds no voter either.
func (m *Member) checkRow(row *truegpuv1.SetMemberCommand) error {
	if err := fsm.VerifyMemberRow(row); err != nil {
		return err
	}
	members, err := m.fsm.Members()
	if err != nil {
		return err
	}
	for _, mem := range members {
		same := len(mem.SignerAddress) == 20 && string(mem.SignerAddress) == string(row.SignerAddress)
		switch {
		case mem.Id == row.Id && len(mem.SignerAddress) == 20 && !same:
			return fmt.Errorf("%w: member %s signs with %s; a new signer needs the member removed and joined again", fsm.ErrConflict, row.Id, ethcrypto.Address(mem.SignerAddress))
		case mem.Id != row.Id && same:
			return fmt.Errorf("%w: signer %s belongs to member %s", fsm.ErrConflict, ethcrypto.Address(row.SignerAddress), mem.Id)
		}
	}
	return nil
}

// selfMeta is this member's row of the member table, unsigned.
func (m *Member) selfMeta() *truegpuv1.SetMemberCommand {
	return &truegpuv1.SetMemberCommand{
		Id: m.cfg.ID, GrpcAddress: m.cfg.GRPCAdvertise, HttpAddress: m.cfg.HTTPAdvertise,
		SignerAddress: m.signer[:], RaftAddress: m.RaftAddress(),
	}
}

// signedSelfMeta is this member's row signed with its signer key, with a
// seq above the stored row's.
func (m *Member) signedSelfMeta() (*truegpuv1.SetMemberCommand, error) {
	row := m.selfMeta()
	row.Seq = uint64(max(m.cfg.Now().UnixMilli(), 1))
	if members, err := m.fsm.Members(); err == nil {
		for _, mem := range members {
			if mem.Id == row.Id && mem.Seq >= row.Seq {
				row.Seq = mem.Seq + 1
			}
		}
	}
	if err := fsm.SignMemberRow(row, m.cfg.SignerKey); err != nil {
		return nil, err
	}
	return row, nil
}

// selfRegisterLoop keeps this member's metadata in the member table: the
// leader proposes its own row; a follower asks the leader through
// AdminService.JoinMember (idempotent for an existing voter).
func (m *Member) selfRegisterLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.Timing.SelfRegisterInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.selfRegistered() {
			continue
		}
		want, err := m.signedSelfMeta()
		if err != nil {
			m.log.Error("cannot sign this member's row", "err", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, m.cfg.Timing.RequestTimeout)
		if m.IsLeader() {
			_, err = m.Propose(cctx, &truegpuv1.Command{Body: &truegpuv1.Command_SetMember{SetMember: want}})
		} else if _, addr := m.LeaderInfo(); addr != "" {
			err = m.forwardJoin(cctx, addr, want)
		}
		cancel()
		if err != nil {
			m.log.Debug("member table update pending", "err", err)
		}
	}
}

func (m *Member) selfRegistered() bool {
	members, err := m.fsm.Members()
	if err != nil {
		return false
	}
	want := m.selfMeta()
	for _, mem := range members {
		if mem.Id == want.Id {
			return mem.GrpcAddress == want.GrpcAddress && mem.HttpAddress == want.HttpAddress &&
				string(mem.SignerAddress) == string(want.SignerAddress) && mem.RaftAddress == want.RaftAddress
		}
	}
	return false
}
