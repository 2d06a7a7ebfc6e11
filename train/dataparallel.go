package train

// Data-parallel training over MPI (train/dist). Every rank builds the same
// model from the same seed and walks the same global batch sequence; a step
// is the single-process step with GradAccum × N micro-batches, of which
// rank r runs those with index k ≡ r (mod N) (k counts the step's
// micro-batches from 0). Dropout seeds are derived from (seed, step, k) and
// augmentation from (seed, epoch, pair), so a micro-batch gets the same
// masks and pixels on whichever rank runs it, and
//
//	N ranks × batch_size b × grad_accum a  ≡  1 process × b × (N·a)
//
// up to float32 rounding of the gradient sum. Each rank sums its
// micro-batches' gradients into one flat buffer, the buffer is summed
// across ranks with MPI_Allreduce in a few large buckets, and divided by the
// number of micro-batches of the whole step; every rank then clips and
// applies the same AdamW step, so the weights stay identical (checked with
// a checksum at the end of the run). Rank 0 alone writes into out_dir:
// metrics, evaluation, checkpoints, plots.
//
// The one difference from the single-process run: a micro-batch whose
// images are all unreadable is dropped from its step (the step averages the
// others), where a single process would draw the next batch instead.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"
	"unsafe"

	"gopkg.in/yaml.v3"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/hub"
	"github.com/gitcap/gitcap/train/dist"
)

// AllReduceBucketElems is the number of float32 gradients per MPI_Allreduce call
// (32 MiB): large enough that per-call latency does not matter, small enough
// that a rank's reduction buffers stay modest.
const AllReduceBucketElems = 8 << 20

// AllReduceBuckets sums flat over the ranks of c in place, one
// MPI_Allreduce per bucket of AllReduceBucketElems gradients: what a
// data-parallel step does with its gradients.
func AllReduceBuckets(c dist.Comm, flat []float32) error {
	for b := 0; b < len(flat); b += AllReduceBucketElems {
		if err := c.AllReduceSum(flat[b:min(b+AllReduceBucketElems, len(flat))]); err != nil {
			return err
		}
	}
	return nil
}

// dataParallel is a run's part in a data-parallel job; nil means a single
// process, and its methods then answer as for one rank.
type dataParallel struct {
	comm  dist.Comm
	accum int // micro-batches per rank per step (grad_accum)
	flat  []float32
	views [][]float32
	local int // micro-batches added since the last reduce
	scal  [5]float64
}

// newDataParallel returns the data-parallel state for ctx's communicator,
// or nil when it has one rank.
func newDataParallel(ctx context.Context, cfg *Config) *dataParallel {
	c := dist.FromContext(ctx)
	if c.Size() <= 1 {
		return nil
	}
	return &dataParallel{comm: c, accum: max(cfg.GradAccum, 1)}
}

func (d *dataParallel) size() int {
	if d == nil {
		return 1
	}
	return d.comm.Size()
}

// leader reports whether this process writes: rank 0, or the only process.
func (d *dataParallel) leader() bool { return d == nil || d.comm.Rank() == 0 }

// totalSteps is the run's optimiser steps: those of the single-process run
// with grad_accum × N.
func (d *dataParallel) totalSteps(cfg *Config, examples int) int {
	if d == nil {
		return cfg.TotalSteps(examples)
	}
	c := *cfg
	c.GradAccum = d.accum * d.size()
	return c.TotalSteps(examples)
}

// microPerStep is the number of micro-batches (of all ranks) in a step.
func (d *dataParallel) microPerStep(cfg *Config) int { return max(cfg.GradAccum, 1) * d.size() }

// iterate returns the batch iterator: the loader's own for one process, a
// shard for a rank. Steps start at batch 0 of an epoch and take
// microPerStep batches, so a batch's index within its step is its index in
// the epoch modulo microPerStep.
func (d *dataParallel) iterate(ctx context.Context, l *data.Loader, pos data.Position) interface {
	Next() (*data.LoadedBatch, error)
	Close()
} {
	if d == nil {
		return l.Iterate(ctx, pos)
	}
	n, r, per := d.size(), d.comm.Rank(), d.accum*d.size()
	// Cancellation is agreed on by all ranks at the end of a step (agree),
	// so a rank's iterator must not stop by itself mid-step.
	return l.IterateShard(context.WithoutCancel(ctx), pos, func(p data.Position) bool { return p.Batch%per%n == r })
}

// bind allocates the flat gradient buffer for params.
func (d *dataParallel) bind(params []*Param) {
	if d == nil {
		return
	}
	d.flat = make([]float32, countParams(params))
	d.views = make([][]float32, len(params))
	off := 0
	for i, p := range params {
		d.views[i] = d.flat[off : off+len(p.W) : off+len(p.W)]
		off += len(p.W)
	}
}

// add adds the current micro-batch's gradients (Param.G) to this rank's sum.
func (d *dataParallel) add(params []*Param) error {
	for i, p := range params {
		v := d.views[i]
		if len(p.G) != len(v) {
			return fmt.Errorf("rank %d: parameter %q has %d gradients, want %d", d.comm.Rank(), p.Name, len(p.G), len(v))
		}
		if d.local == 0 {
			copy(v, p.G)
			continue
		}
		g := p.G[:len(v)]
		for j := range v {
			v[j] += g[j]
		}
	}
	d.local++
	return nil
}

// stepTotals are a step's sums over all ranks.
type stepTotals struct {
	loss                   float64 // sum of the micro-batch losses
	micro, images, corrupt int
}

// reduce sums the step's gradients and totals over all ranks, leaves the
// mean gradient of the step's micro-batches in every Param.G and returns
// the totals.
func (d *dataParallel) reduce(params []*Param, mine stepTotals) (stepTotals, error) {
	if d.local == 0 {
		clear(d.flat) // this rank ran none of the step's micro-batches
	}
	d.local = 0
	if err := AllReduceBuckets(d.comm, d.flat); err != nil {
		return stepTotals{}, err
	}
	d.scal = [5]float64{mine.loss, float64(mine.micro), float64(mine.images), float64(mine.corrupt)}
	if err := d.comm.AllReduceSum64(d.scal[:4]); err != nil {
		return stepTotals{}, err
	}
	t := stepTotals{loss: d.scal[0], micro: int(d.scal[1]), images: int(d.scal[2]), corrupt: int(d.scal[3])}
	if t.micro == 0 {
		return t, fmt.Errorf("no micro-batch of the step had a readable image on any of the %d ranks", d.size())
	}
	if t.micro > 1 {
		n := float32(t.micro) // as Accumulator.Average: sum / count in float32
		for j := range d.flat {
			d.flat[j] /= n
		}
	}
	for i, p := range params {
		p.G = d.views[i]
	}
	return t, nil
}

// agree returns whether any rank says stop (a cancelled context): every
// rank stops after the same step. It also makes the other ranks wait for
// rank 0's evaluation and checkpoint.
func (d *dataParallel) agree(stop bool) (bool, error) {
	if d == nil {
		return stop, nil
	}
	d.scal[4] = 0
	if stop {
		d.scal[4] = 1
	}
	if err := d.comm.AllReduceSum64(d.scal[4:5]); err != nil {
		return false, err
	}
	return d.scal[4] > 0, nil
}

// checkConfig makes rank 0 refuse to start when a rank's configuration
// differs from its own (a different file, flag or data path).
func (d *dataParallel) checkConfig(cfg *Config) error {
	if d == nil {
		return nil
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	h := sha256.Sum256(b)
	all, err := d.comm.Gather(h[:])
	if err != nil {
		return err
	}
	for r, o := range all {
		if string(o) != string(h[:]) {
			return fmt.Errorf("rank %d's training configuration differs from rank 0's: every rank must run the same command", r)
		}
	}
	return nil
}

// checkWeights makes rank 0 fail when a rank's weights differ from its own
// after step (a CRC-64 of every parameter's bytes, gathered at rank 0).
func (d *dataParallel) checkWeights(m *gitmodel.Model, step int) error {
	if d == nil {
		return nil
	}
	tab := crc64.MakeTable(crc64.ECMA)
	var h uint64
	for _, p := range m.Params.All() {
		w := p.F32()
		if len(w) > 0 {
			h = crc64.Update(h, tab, unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), 4*len(w)))
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], h)
	all, err := d.comm.Gather(b[:])
	if err != nil {
		return err
	}
	for r, o := range all {
		if string(o) != string(b[:]) {
			return fmt.Errorf("after step %d the weights of rank %d differ from rank 0's (checksum %x, rank 0 %x)", step, r, o, b)
		}
	}
	return nil
}

// checkResume refuses to resume a checkpoint with another number of ranks.
func (d *dataParallel) checkResume(st TrainerState, dir string) error {
	if was, now := max(st.WorldSize, 1), d.size(); was != now {
		how := fmt.Sprintf("mpirun -np %d gitcap train --resume %s", was, dir)
		if was == 1 {
			how = "gitcap train --resume " + dir + " (without mpirun)"
		}
		return fmt.Errorf("resume: %s was written by a run on %d MPI rank(s), this run has %d; the global batch "+
			"(ranks x batch_size x grad_accum), data order and schedule depend on it, so resume with %s", dir, was, now, how)
	}
	return nil
}

// fetchFirst has rank 0 resolve cfg.Model (downloading a HF model id into
// the cache) while the other ranks wait, so that the ranks of one machine
// do not download the same files at once; they then find them cached.
func (d *dataParallel) fetchFirst(ctx context.Context, cfg *Config, resumeDir string, out io.Writer) error {
	if d == nil || cfg.Model == "" || resumeDir != "" {
		return nil
	}
	if d.leader() {
		opts := hub.OptionsFromEnv()
		opts.Progress = out
		if _, err := hub.Resolve(ctx, cfg.Model, opts); err != nil {
			return err
		}
	}
	return d.comm.Barrier()
}

// mpiReducer is the Trainer's gradReducer under MPI: dp's flat buffer
// summed over the ranks, with the unreadable images the ranks found in the
// step counted over all of them.
type mpiReducer struct{ t *runner }

func (m mpiReducer) add(params []*Param) error { return m.t.dp.add(params) }

func (m mpiReducer) reduce(params []*Param, loss float64, micro, images int) (float64, int, int, error) {
	t := m.t
	tot, err := t.dp.reduce(params, stepTotals{loss, micro, images, t.state.Corrupt - t.corrupt0})
	if err != nil {
		return 0, 0, 0, err
	}
	t.state.Corrupt = t.corrupt0 + tot.corrupt
	return tot.loss, tot.micro, tot.images, nil
}
