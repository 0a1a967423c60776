package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// LatestReport returns the newest epoch report with at least the
// threshold of member signatures, or with includeIncomplete the newest
// report at all.
func (c *Client) LatestReport(ctx context.Context, includeIncomplete bool) (*truegpuv1.EpochReport, error) {
	resp, err := c.feed.GetLatestReport(ctx, &truegpuv1.GetLatestReportRequest{IncludeIncomplete: includeIncomplete})
	if err != nil {
		return nil, err
	}
	return resp.Report, nil
}

// Report returns one epoch's report.
func (c *Client) Report(ctx context.Context, epoch uint64) (*truegpuv1.EpochReport, error) {
	resp, err := c.feed.GetReport(ctx, &truegpuv1.GetReportRequest{Epoch: epoch})
	if err != nil {
		return nil, err
	}
	return resp.Report, nil
}

// NodeProof returns a node's leaf (score, status) in an epoch's tree and
// its Merkle proof. Check it with VerifyNodeProof against a report
// verified with VerifyReport.
func (c *Client) NodeProof(ctx context.Context, epoch uint64, address string) (*truegpuv1.GetNodeProofResponse, error) {
	return c.feed.GetNodeProof(ctx, &truegpuv1.GetNodeProofRequest{Epoch: epoch, Address: address})
}

// Errors of the offline checks. Compare with errors.Is.
var (
	// ErrReportInvalid reports a report whose fields, digest or
	// signatures do not check out.
	ErrReportInvalid = errors.New("client: report does not verify")
	// ErrProofInvalid reports a node proof that does not lead to the
	// report's root.
	ErrProofInvalid = errors.New("client: node proof does not verify")
)

// Trust is what a consumer trusts a report to be signed by: the signing
// addresses of the oracle members (as the feed contract is configured)
// and how many of them must sign.
type Trust struct {
	// Signers are the members' signing addresses, 0x-prefixed.
	Signers []string
	// Threshold is the number of distinct signers required. Zero means a
	// majority of Signers.
	Threshold int
	// At, when set, is the time the report must be valid at: not before
	// its ValidFrom and not after its ExpiresAt, as the feed contract and
	// its consumers judge it at block time. Zero skips that check (the
	// window must still not be empty).
	At time.Time
}

// VerifyReport checks a report offline, as the feed contract would: it
// checks the validity window (at trust.At when set), recomputes the EIP-712 digest from the report's fields and domain,
// compares it with the digest the report carries, and requires at least
// trust.Threshold valid signatures by distinct addresses of
// trust.Signers. Any signature that does not recover to one of them
// fails the report. It does not call the cluster.
func VerifyReport(r *truegpuv1.EpochReport, trust Trust) error {
	if r == nil {
		return fmt.Errorf("%w: no report", ErrReportInvalid)
	}
	rep, dom, err := reportFields(r)
	if err != nil {
		return err
	}
	if rep.ValidFrom > rep.ExpiresAt {
		return fmt.Errorf("%w: %w", ErrReportInvalid, rep.CheckWindow(rep.ValidFrom))
	}
	if !trust.At.IsZero() {
		if err := rep.CheckWindow(uint64(max(trust.At.Unix(), 0))); err != nil {
			return fmt.Errorf("%w: %w", ErrReportInvalid, err)
		}
	}
	digest := reputation.ReportDigest(dom, rep)
	if len(r.Digest) != 0 && string(r.Digest) != string(digest[:]) {
		return fmt.Errorf("%w: epoch %d: the digest does not match the report's fields", ErrReportInvalid, r.Epoch)
	}
	members := make([]ethcrypto.Address, 0, len(trust.Signers))
	for _, s := range trust.Signers {
		a, err := ethcrypto.ParseAddress(s)
		if err != nil {
			return fmt.Errorf("%w: trusted signer %q is not an address", ErrReportInvalid, s)
		}
		members = append(members, a)
	}
	threshold := trust.Threshold
	if threshold == 0 {
		threshold = len(members)/2 + 1
	}
	sigs := make([][]byte, 0, len(r.Signatures))
	for _, s := range r.Signatures {
		sigs = append(sigs, s.Signature)
	}
	if err := reputation.VerifySignatures(dom, rep, sigs, members, threshold); err != nil {
		return fmt.Errorf("%w: epoch %d: %w", ErrReportInvalid, r.Epoch, err)
	}
	return nil
}

func reportFields(r *truegpuv1.EpochReport) (reputation.Report, reputation.Domain, error) {
	if len(r.ConfigDigest) != 32 || len(r.Root) != 32 {
		return reputation.Report{}, reputation.Domain{}, fmt.Errorf("%w: epoch %d: config digest and root must be 32 bytes", ErrReportInvalid, r.Epoch)
	}
	d := r.GetDomain()
	var contract ethcrypto.Address
	if d.GetVerifyingContract() != "" {
		var err error
		if contract, err = ethcrypto.ParseAddress(d.GetVerifyingContract()); err != nil {
			return reputation.Report{}, reputation.Domain{}, fmt.Errorf("%w: epoch %d: verifying contract %q is not an address", ErrReportInvalid, r.Epoch, d.GetVerifyingContract())
		}
	}
	rep := reputation.Report{ConfigDigest: [32]byte(r.ConfigDigest), Epoch: r.Epoch, Round: r.Round, Timestamp: r.Timestamp, Root: [32]byte(r.Root), Count: r.Count,
		ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt}
	dom := reputation.Domain{Name: d.GetName(), Version: d.GetVersion(), ChainID: d.GetChainId(), VerifyingContract: contract}
	return rep, dom, nil
}

// VerifyNodeProof checks offline that p proves the node's (address,
// score, status) leaf under r's Merkle root, and that p belongs to r's
// epoch. Verify r itself with VerifyReport first: a proof is only as good
// as the root it leads to.
func VerifyNodeProof(r *truegpuv1.EpochReport, p *truegpuv1.GetNodeProofResponse) error {
	if r == nil || p == nil {
		return fmt.Errorf("%w: missing report or proof", ErrProofInvalid)
	}
	if p.Epoch != r.Epoch {
		return fmt.Errorf("%w: proof is for epoch %d, report for epoch %d", ErrProofInvalid, p.Epoch, r.Epoch)
	}
	if len(r.Root) != 32 {
		return fmt.Errorf("%w: report root is %d bytes", ErrProofInvalid, len(r.Root))
	}
	addr, err := ethcrypto.ParseAddress(p.Address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address", ErrProofInvalid, p.Address)
	}
	e := reputation.Entry{Address: addr, Score: p.ScoreBp, Status: reputation.Status(p.Status)}
	if leaf := reputation.LeafHash(e); len(p.Leaf) != 0 && string(p.Leaf) != string(leaf[:]) {
		return fmt.Errorf("%w: the leaf hash does not match address, score and status", ErrProofInvalid)
	}
	proof := make([][32]byte, len(p.Proof))
	for i, h := range p.Proof {
		if len(h) != 32 {
			return fmt.Errorf("%w: proof element %d is %d bytes", ErrProofInvalid, i, len(h))
		}
		proof[i] = [32]byte(h)
	}
	if !reputation.VerifyProof([32]byte(r.Root), e, proof) {
		return fmt.Errorf("%w: %s with score %d and status %s is not under the root of epoch %d", ErrProofInvalid, addr, p.ScoreBp, e.Status, r.Epoch)
	}
	return nil
}
