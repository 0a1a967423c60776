package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Oracle membership: the members' signed rows.

// signers returns the members' signer addresses, sorted.
func (t *txn) signers() ([]ethcrypto.Address, error) {
	var out []ethcrypto.Address
	err := t.scan(prefixMember, func(_, v []byte) error {
		var m truegpuv1.SetMemberCommand
		if err := proto.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("fsm: corrupt member record: %w", err)
		}
		if len(m.SignerAddress) == 20 {
			out = append(out, ethcrypto.Address(m.SignerAddress))
		}
		return nil
	})
	return reputation.SortedMembers(out), err
}

// setMember applies a member's signed row: the signature must recover to
// the row's own signer, the seq must be above the stored row's, an
// existing row keeps its signer, and no two members share a signer.
func (t *txn) setMember(c *truegpuv1.SetMemberCommand) error {
	if c.Id == "" || len(c.Id) > 128 {
		return invalid("member: id must be 1..128 bytes")
	}
	if len(c.SignerAddress) != 20 {
		return invalid("member %s: signer address must be 20 bytes", c.Id)
	}
	signer := ethcrypto.Address(c.SignerAddress)
	if err := VerifyMemberRow(c); err != nil {
		return err
	}
	old := &truegpuv1.SetMemberCommand{}
	found, err := t.getMsg(key(prefixMember, []byte(c.Id)), old)
	if err != nil {
		return err
	}
	if found && len(old.SignerAddress) == 20 && ethcrypto.Address(old.SignerAddress) != signer {
		return fmt.Errorf("%w: member %s signs with %s; a new signer needs the member removed and joined again", ErrConflict, c.Id, ethcrypto.Address(old.SignerAddress))
	}
	if found && c.Seq <= old.Seq {
		return fmt.Errorf("%w: member %s row seq %d is not above the current %d", ErrConflict, c.Id, c.Seq, old.Seq)
	}
	err = t.scan(prefixMember, func(_, v []byte) error {
		var m truegpuv1.SetMemberCommand
		if err := proto.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("fsm: corrupt member record: %w", err)
		}
		if m.Id != c.Id && len(m.SignerAddress) == 20 && ethcrypto.Address(m.SignerAddress) == signer {
			return fmt.Errorf("%w: signer %s belongs to member %s", ErrConflict, signer, m.Id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.putMsg(key(prefixMember, []byte(c.Id)), c)
	return nil
}

// VerifyMemberRow checks that a member row is signed by its own signer:
// its signature over SigningDigest(row) recovers to row.SignerAddress.
func VerifyMemberRow(row *truegpuv1.SetMemberCommand) error {
	if len(row.SignerAddress) != 20 {
		return invalid("member %s: signer address must be 20 bytes", row.Id)
	}
	digest, err := truegpuv1.SigningDigest(row)
	if err != nil {
		return fmt.Errorf("%w: member %s: %v", ErrInvalidCommand, row.Id, err)
	}
	got, err := ethcrypto.RecoverAddress(digest, row.Signature)
	if err != nil || got != ethcrypto.Address(row.SignerAddress) {
		return fmt.Errorf("%w: member %s: the row is not signed by its signer %s", ErrBadSignature, row.Id, ethcrypto.Address(row.SignerAddress))
	}
	return nil
}

// SignMemberRow sets row.Signature to key's signature of the row; key must
// be the row's signer.
func SignMemberRow(row *truegpuv1.SetMemberCommand, key *ethcrypto.PrivateKey) error {
	row.Signature = nil
	digest, err := truegpuv1.SigningDigest(row)
	if err != nil {
		return err
	}
	sig, err := key.SignHash(digest)
	if err != nil {
		return err
	}
	row.Signature = sig[:]
	return nil
}

func (t *txn) removeMember(c *truegpuv1.RemoveMemberCommand) error {
	if _, ok, err := t.get(key(prefixMember, []byte(c.Id))); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: member %q", ErrNotFound, c.Id)
	}
	t.del(key(prefixMember, []byte(c.Id)))
	return nil
}
