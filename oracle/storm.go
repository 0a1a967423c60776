package oracle

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// observe updates the storm groups from a node record just read.
func (s *scheduler) observe(rec *truegpuv1.NodeRecord) {
	addr := ethcrypto.Address(rec.Address)
	s.observeGone(addr)
	var st reputation.NodeState
	if err := st.UnmarshalBinary(rec.Reputation); err == nil {
		// Undecided identity contests, with every node presenting them:
		// the storm is the evidence that decides them (each holder's
		// device challenged at the same instant).
		for _, cf := range st.Conflicts {
			if cf.Outcome != reputation.ConflictOpen {
				continue
			}
			s.contests[cf.Identity] = slices.Clone(cf.Nodes)
			s.nodeContests[addr] = append(s.nodeContests[addr], cf.Identity)
		}
	}
	if rec.Status == truegpuv1.NodeStatus_NODE_STATUS_SUSPECT && len(rec.Devices) > 0 {
		class := rec.Devices[0].ClaimedClass
		if s.suspects[class] == nil {
			s.suspects[class] = map[ethcrypto.Address]bool{}
		}
		s.suspects[class][addr] = true
		s.nodeSuspect[addr] = class
	}
}

// observeGone forgets what the groups hold about addr.
func (s *scheduler) observeGone(addr ethcrypto.Address) {
	for _, id := range s.nodeContests[addr] {
		delete(s.contests, id) // relearned from any holder still in it
	}
	delete(s.nodeContests, addr)
	if class, ok := s.nodeSuspect[addr]; ok {
		delete(s.suspects[class], addr)
		if len(s.suspects[class]) == 0 {
			delete(s.suspects, class)
		}
		delete(s.nodeSuspect, addr)
	}
}

// storms challenges every device of each suspected group at one instant:
// nodes that share a device identity (an undecided contest), and suspect
// nodes of one claimed class. A single GPU answering for many nodes cannot
// meet all deadlines. The groups come from the records the scheduler has
// read (observe); each member's record is read again here, and a node that
// has left its group since is left out.
func (s *scheduler) storms(ctx context.Context, now time.Time) error {
	s.sync(now)
	groups := map[string][]ethcrypto.Address{}
	for id, nodes := range s.contests {
		groups["dup:"+id] = slices.Clone(nodes)
	}
	for class, set := range s.suspects {
		for a := range set {
			groups["class:"+class] = append(groups["class:"+class], a)
		}
	}
	keys := make([]string, 0, len(groups))
	for k, g := range groups {
		slices.SortFunc(g, func(a, b ethcrypto.Address) int { return bytes.Compare(a[:], b[:]) })
		groups[k] = slices.Compact(g)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	budget := s.cfg.MaxPerTick
	for _, k := range keys {
		if budget <= 0 {
			break
		}
		var idb [8]byte
		rand.Read(idb[:])
		stormID := "storm-" + hex.EncodeToString(idb[:])
		var chs []*truegpuv1.IssuedChallenge
		for _, addr := range groups[k] {
			rec, err := s.node(addr)
			if errors.Is(err, fsm.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			s.observe(rec)
			if !inGroup(k, rec) {
				continue
			}
			busy, err := s.busyDevices(addr, rec)
			if err != nil {
				return err
			}
			for _, d := range rec.Devices {
				if busy[d.Index] {
					continue
				}
				if ch, err := s.challenge(addr, d, now, stormID); err == nil {
					chs = append(chs, ch)
				}
			}
		}
		if len(chs) < 2 {
			continue
		}
		budget -= len(chs)
		if _, err := s.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
			return fmt.Errorf("storm %s: %w", stormID, err)
		}
		s.log.Info("storm issued", "storm", stormID, "group", k, "challenges", len(chs))
	}
	return nil
}

// inGroup reports whether rec still belongs to storm group k.
func inGroup(k string, rec *truegpuv1.NodeRecord) bool {
	if id, ok := strings.CutPrefix(k, "dup:"); ok {
		var st reputation.NodeState
		if err := st.UnmarshalBinary(rec.Reputation); err != nil {
			return false
		}
		for _, cf := range st.Conflicts {
			if cf.Identity == id && cf.Outcome == reputation.ConflictOpen {
				return true
			}
		}
		return false
	}
	class, _ := strings.CutPrefix(k, "class:")
	return rec.Status == truegpuv1.NodeStatus_NODE_STATUS_SUSPECT && len(rec.Devices) > 0 && rec.Devices[0].ClaimedClass == class
}

// randomStorm challenges RandomStormSize devices drawn uniformly from the
// whole fleet (with the leader's random source) at one instant, under one
// storm id, whatever their standing. Devices with an open challenge are
// skipped. It reads the records of the drawn devices' nodes only.
func (s *scheduler) randomStorm(ctx context.Context, now time.Time) error {
	s.sync(now)
	size := min(s.cfg.RandomStormSize, s.cfg.MaxPerTick)
	if size <= 0 || len(s.devs) == 0 {
		return nil
	}
	n := min(size, len(s.devs))
	// n distinct positions, uniformly: a partial shuffle of the positions,
	// with only the swapped ones kept in a map.
	swapped := map[int]int{}
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	picks := make([]deviceKey, 0, n)
	for i := range n {
		j := i + int(randUint64()%uint64(len(s.devs)-i))
		vi, vj := at(i), at(j)
		swapped[i], swapped[j] = vj, vi
		picks = append(picks, s.devs[vj])
	}
	var idb [8]byte
	rand.Read(idb[:])
	stormID := "storm-random-" + hex.EncodeToString(idb[:])
	type nodeInfo struct {
		rec  *truegpuv1.NodeRecord
		busy map[uint32]bool
	}
	nodes := map[ethcrypto.Address]*nodeInfo{}
	var chs []*truegpuv1.IssuedChallenge
	for _, p := range picks {
		ni, ok := nodes[p.addr]
		if !ok {
			rec, err := s.node(p.addr)
			if errors.Is(err, fsm.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			s.observe(rec)
			busy, err := s.busyDevices(p.addr, rec)
			if err != nil {
				return err
			}
			ni = &nodeInfo{rec, busy}
			nodes[p.addr] = ni
		}
		if int(p.dev) >= len(ni.rec.Devices) || ni.busy[p.dev] {
			continue
		}
		if ch, err := s.challenge(p.addr, ni.rec.Devices[p.dev], now, stormID); err == nil {
			chs = append(chs, ch)
		}
	}
	if len(chs) < 2 {
		return nil
	}
	if _, err := s.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
		IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
		return fmt.Errorf("storm %s: %w", stormID, err)
	}
	s.log.Info("storm issued", "storm", stormID, "group", "random", "challenges", len(chs))
	return nil
}
