package oracle

import (
	"context"
	"sync"
	"time"

	"github.com/truegpu/truegpu/verifier"
)

type verifyJob struct {
	proof *verifier.Proof
	pub   verifier.PublicInputs
	ok    chan bool
}

func (p *pipeline) run(ctx context.Context) {
	sem := make(chan struct{}, p.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var first verifyJob
		select {
		case <-ctx.Done():
			return
		case first = <-p.jobs:
		}
		batch := []verifyJob{first}
		timer := time.NewTimer(p.cfg.BatchWait)
	fill:
		for len(batch) < p.cfg.MaxBatch {
			select {
			case j := <-p.jobs:
				batch = append(batch, j)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.verify(batch)
		}()
	}
}

func (p *pipeline) verify(batch []verifyJob) {
	proofs := make([]*verifier.Proof, len(batch))
	pubs := make([]verifier.PublicInputs, len(batch))
	for i, j := range batch {
		proofs[i], pubs[i] = j.proof, j.pub
	}
	bad, err := verifier.VerifyBatch(p.m.cfg.VerifyingKey, proofs, pubs)
	if err != nil {
		// The batch could not be checked at all: fall back to one by one
		// rather than condemn honest proofs.
		for _, j := range batch {
			j.ok <- verifier.Verify(p.m.cfg.VerifyingKey, j.proof, j.pub) == nil
		}
		return
	}
	isBad := make(map[int]bool, len(bad))
	for _, i := range bad {
		isBad[i] = true
	}
	for i, j := range batch {
		j.ok <- !isBad[i]
	}
}
