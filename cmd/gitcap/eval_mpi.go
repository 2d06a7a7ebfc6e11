package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/train/dist"
)

// Under mpirun, gitcap eval shards the images across the ranks (rank r takes
// images r, r+N, ..., as --shard r/N does), and rank 0 gathers every rank's
// captions, writes the one results file and scores the whole set, so the
// output equals the single-process eval's.

// evalShardMPI returns the shard of this rank under an MPI launch with more
// than one rank, and k/n (from --shard) otherwise.
func evalShardMPI(ctx context.Context, k, n int) (int, int, error) {
	c := dist.FromContext(ctx)
	if c.Size() == 1 {
		return k, n, nil
	}
	if n > 1 {
		return 0, 0, errors.New("--shard cannot be combined with mpirun: the ranks shard the set themselves")
	}
	return c.Rank(), c.Size(), nil
}

// evalCaption is a caption as sent to rank 0.
type evalCaption struct {
	Name, Text, Err string
}

// gatherEvalMPI sends this rank's ids and captions to rank 0. On rank 0 it
// returns every rank's, in the order of the set's images, and n = 1 (the
// whole set); on the other ranks it returns nil captions: they are done.
// Without MPI it returns its arguments.
func gatherEvalMPI(ctx context.Context, ann *data.CaptionSet, caps []caption.Caption, ids []string, n int) ([]caption.Caption, []string, int, error) {
	c := dist.FromContext(ctx)
	if c.Size() == 1 {
		return caps, ids, n, nil
	}
	msg := struct {
		IDs  []string
		Caps []evalCaption
	}{IDs: ids}
	for _, cp := range caps {
		e := evalCaption{Name: cp.Sample.Name, Text: cp.Text}
		if cp.Err != nil {
			e.Err = cp.Err.Error()
		}
		msg.Caps = append(msg.Caps, e)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, nil, 0, err
	}
	all, err := c.Gather(b)
	if err != nil || c.Rank() != 0 {
		return nil, nil, 0, err
	}
	order := make(map[string]int, len(ann.Images))
	for i, im := range ann.Images {
		order[im.ID] = i
	}
	ids, caps = nil, nil
	for r, b := range all {
		if err := json.Unmarshal(b, &msg); err != nil {
			return nil, nil, 0, fmt.Errorf("results of rank %d: %w", r, err)
		}
		ids = append(ids, msg.IDs...)
		for _, e := range msg.Caps {
			cp := caption.Caption{Sample: caption.Sample{Name: e.Name}, Text: e.Text}
			if e.Err != "" {
				cp.Err = errors.New(e.Err)
			}
			caps = append(caps, cp)
		}
		msg.IDs, msg.Caps = nil, nil
	}
	sort.SliceStable(ids, func(i, j int) bool { return order[ids[i]] < order[ids[j]] })
	sort.SliceStable(caps, func(i, j int) bool { return order[caps[i].Sample.Name] < order[caps[j].Sample.Name] })
	return caps, ids, 1, nil
}
