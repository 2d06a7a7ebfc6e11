package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/train"
	"github.com/gitcap/gitcap/train/dist/disttest"
)

// The tests in this file build the gitcap binary and run it under
// "mpirun -np 2 --oversubscribe" on this machine. Without mpirun they skip,
// except under CI (CI=true), where .ci/run installs openmpi-bin and they
// fail.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binLog  []byte
)

// gitcapBinary builds the gitcap command once per test run.
func gitcapBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gitcap-mpi-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "gitcap")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		binLog, binErr = cmd.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binLog)
	}
	return binPath
}

// runJob runs a command, failing the test if it runs past timeout (a hang).
func runJob(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish in %s (a hang):\n%s", name, strings.Join(args, " "), timeout, buf.String())
	}
	return buf.String(), err
}

// mpiTrainSet writes a COCO captions file over the six fixture shape
// images and returns its path.
func mpiTrainSet(t *testing.T, dir string) string {
	t.Helper()
	return mpiCaptionSet(t, dir, 0)
}

// mpiCaptionSet is mpiTrainSet's set cut to its first n images (n 0: all).
func mpiCaptionSet(t *testing.T, dir string, n int) string {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "git-tiny", "reference", "pretrain_captions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Captions map[string]string `json:"captions"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(fixtures.Path(t, "images"), "shape_*.png"))
	if len(matches) < 4 {
		t.Fatalf("too few shape images: %v", matches)
	}
	if n > 0 {
		matches = matches[:n]
	}
	set := &data.CaptionSet{}
	for i, m := range matches {
		name := filepath.Base(m)
		set.Images = append(set.Images, data.CaptionImage{ID: string(rune('a' + i)), File: name, Captions: []string{ref.Captions[name]}})
	}
	path := filepath.Join(dir, "captions.json")
	if err := data.WriteCOCOAnnotations(path, set); err != nil {
		t.Fatal(err)
	}
	return path
}

// mpiTrainConfig writes a training config for the tiny model that uses
// everything the global position must decide: shuffling, dropout (the
// model's 0.1), flips and random crops, and an epoch whose last step is
// short (6 pairs in batches of 2: 3 micro-batches an epoch, 2 a step).
func mpiTrainConfig(t *testing.T, dir, name, out string, accum, steps int) string {
	t.Helper()
	y := "model: " + fixtures.Path(t, "git-tiny") + "\ntrain:\n  path: " + mpiTrainSet(t, dir) + "\n  images: " + fixtures.Path(t, "images") +
		"\nout_dir: " + out + "\nsteps: " + itoa(steps) + "\nbatch_size: 2\ngrad_accum: " + itoa(accum) +
		"\nlr: 3.0e-3\nwarmup_steps: 1\nlog_every: 1\nseed: 11\nworkers: 1\nsave_every: 3\naugment:\n  hflip: true\n  random_resized_crop: true\n"
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// stepLosses reads the per-step training losses of a run.
func stepLosses(t *testing.T, out string) map[int]float64 {
	t.Helper()
	recs, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]float64{}
	for _, r := range recs {
		if !math.IsNaN(r.Loss) {
			m[r.Step] = r.Loss
		}
	}
	return m
}

// weightDiffs returns the largest absolute difference of each parameter
// between two checkpoints.
func weightDiffs(t *testing.T, a, b string) map[string]float64 {
	t.Helper()
	ma, err := gitmodel.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := gitmodel.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]float64{}
	for _, p := range ma.Params.All() {
		q := mb.Params.Get(p.Name)
		if q == nil || len(q.F32()) != len(p.F32()) {
			t.Fatalf("parameter %s missing or reshaped in %s", p.Name, b)
		}
		m := 0.0
		for i, v := range p.F32() {
			m = max(m, math.Abs(float64(v)-float64(q.F32()[i])))
		}
		d[p.Name] = m
	}
	return d
}

func maxWeightDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	m := 0.0
	for _, d := range weightDiffs(t, a, b) {
		m = max(m, d)
	}
	return m
}

// zeroGradient reports whether a parameter's gradient is zero in exact
// arithmetic: an attention key bias adds the same q·b to every score of a
// softmax row, which the softmax ignores. Its float32 gradient is rounding
// noise that AdamW normalises into lr-sized steps, so it follows the
// summation order of the micro-batch gradients, not the data.
func zeroGradient(name string) bool {
	return strings.HasSuffix(name, "attention.self.key.bias") || strings.HasSuffix(name, "self_attn.k_proj.bias")
}

// TestMPITrainMatchesSingleProcess: 2 ranks x batch 2 x grad_accum a
// follow 1 process x batch 2 x grad_accum 2a step by step (losses within
// 1e-5) to the same weights (within 1e-5; for a > 1 except the attention key
// biases, whose exact gradient is zero: see zeroGradient); and one process
// refuses to resume the 2-rank checkpoint.
func TestMPITrainMatchesSingleProcess(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	if testing.Short() {
		t.Skip("mpirun training runs (about a minute): not with -short")
	}
	bin := gitcapBinary(t)
	const steps = 6
	for _, rankAccum := range []int{1, 2} {
		t.Run("grad_accum="+itoa(rankAccum), func(t *testing.T) {
			dir := t.TempDir()
			one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
			out, err := runJob(t, 3*time.Minute, disttest.Env(), bin, "train", "--config", mpiTrainConfig(t, dir, "one.yaml", one, 2*rankAccum, steps))
			if err != nil {
				t.Fatalf("single process: %v\n%s", err, out)
			}
			out, err = runJob(t, 3*time.Minute, disttest.Env(), mpirun, disttest.Args(2, bin, "train", "--config", mpiTrainConfig(t, dir, "two.yaml", two, rankAccum, steps))...)
			if err != nil {
				t.Fatalf("mpirun -np 2: %v\n%s", err, out)
			}
			if !strings.Contains(out, "data-parallel on 2 MPI ranks") || strings.Count(out, "done: 6 steps") != 1 {
				t.Fatalf("mpirun -np 2 output (want one data-parallel run reported by rank 0 alone):\n%s", out)
			}
			l1, l2 := stepLosses(t, one), stepLosses(t, two)
			if len(l1) != steps || len(l2) != steps {
				t.Fatalf("logged steps: one process %v, two ranks %v", l1, l2)
			}
			for s, a := range l1 {
				if b := l2[s]; math.Abs(a-b) > 1e-5 {
					t.Errorf("step %d: loss %.8f on one process, %.8f on two ranks", s, a, b)
				}
			}
			// With one micro-batch per rank and step the sums are the same
			// two-term float32 sums, so every weight must agree; with more,
			// the order of the sum differs (ranks' partial sums, then the
			// all-reduce), which only the zero-gradient parameters amplify.
			worst := 0.0
			for name, d := range weightDiffs(t, filepath.Join(one, train.LastCheckpoint), filepath.Join(two, train.LastCheckpoint)) {
				switch {
				case rankAccum > 1 && zeroGradient(name):
					if d > 2*3e-3*steps { // AdamW moves a weight by about lr a step
						t.Errorf("%s (gradient zero up to rounding) differs by %g: more than its AdamW steps allow", name, d)
					}
				case d > 1e-5:
					t.Errorf("final weights of %s differ by %g", name, d)
				default:
					worst = max(worst, d)
				}
			}
			t.Logf("final weights within %g", worst)
			if d := maxWeightDiff(t, fixtures.Path(t, "git-tiny"), filepath.Join(two, train.LastCheckpoint)); d < 1e-4 {
				t.Errorf("the weights moved by only %g from the initial model: the comparison above proves nothing", d)
			}
			if rankAccum > 1 {
				return
			}
			// One process must refuse the 2-rank checkpoint, saying why.
			out, err = runJob(t, time.Minute, disttest.Env(), bin, "train", "--resume", filepath.Join(two, train.LastCheckpoint))
			if err == nil || !strings.Contains(out, "2 MPI rank") || !strings.Contains(out, "mpirun -np 2") {
				t.Errorf("resuming a 2-rank run in one process: %v\n%s", err, out)
			}
		})
	}
}

// TestMPITrainResumesWithSameRanks stops a 2-rank run part-way with
// SIGTERM to mpirun (Open MPI kills the ranks a second later, so the
// checkpoint is normally the last periodic one, save_every 3, written
// atomically), resumes it with 2 ranks, and requires the weights of the
// uninterrupted 2-rank run, bit for bit.
func TestMPITrainResumesWithSameRanks(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	if testing.Short() {
		t.Skip("runs mpirun: not with -short")
	}
	bin := gitcapBinary(t)
	dir := t.TempDir()
	const steps = 30
	full, part := filepath.Join(dir, "full"), filepath.Join(dir, "part")
	if out, err := runJob(t, 3*time.Minute, disttest.Env(), mpirun, disttest.Args(2, bin, "train", "--config", mpiTrainConfig(t, dir, "full.yaml", full, 1, steps))...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	cfg := mpiTrainConfig(t, dir, "part.yaml", part, 1, steps)
	cmd := exec.Command(mpirun, disttest.Args(2, bin, "train", "--config", cfg)...)
	cmd.Env = disttest.Env()
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(buf.String(), "step 3/") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no step 3 within 2 minutes:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM) // mpirun sends SIGTERM to every rank
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the job did not stop within a minute of SIGTERM:\n%s", buf.String())
	}
	b, err := os.ReadFile(filepath.Join(part, train.LastCheckpoint, train.StateFile))
	if err != nil {
		t.Fatalf("no checkpoint after SIGTERM: %v\n%s", err, buf.String())
	}
	var st train.TrainerState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Step >= steps || st.WorldSize != 2 {
		t.Fatalf("checkpoint at step %d of %d on %d ranks: the run was not interrupted as planned\n%s", st.Step, steps, st.WorldSize, buf.String())
	}
	t.Logf("resuming from the checkpoint at step %d", st.Step)
	out, err := runJob(t, 3*time.Minute, disttest.Env(), mpirun, disttest.Args(2, bin, "train", "--resume", filepath.Join(part, train.LastCheckpoint))...)
	if err != nil {
		t.Fatalf("resume with 2 ranks: %v\n%s", err, out)
	}
	if d := maxWeightDiff(t, filepath.Join(full, train.LastCheckpoint), filepath.Join(part, train.LastCheckpoint)); d != 0 {
		t.Errorf("resumed weights differ from the uninterrupted run's by up to %g", d)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMPIRankFailureStopsTheJob starts rank 0 with a good configuration and
// rank 1 with a missing one (mpirun's A : B form): the job must exit
// non-zero within seconds, naming rank 1, not hang with rank 0 waiting.
func TestMPIRankFailureStopsTheJob(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	if testing.Short() {
		t.Skip("runs mpirun: not with -short")
	}
	bin := gitcapBinary(t)
	dir := t.TempDir()
	good := mpiTrainConfig(t, dir, "good.yaml", filepath.Join(dir, "run"), 1, 4)
	args := append(disttest.Args(1, bin, "train", "--config", good), ":", "-np", "1", bin, "train", "--config", filepath.Join(dir, "missing.yaml"))
	start := time.Now()
	out, err := runJob(t, 2*time.Minute, disttest.Env(), mpirun, args...)
	if err == nil {
		t.Fatalf("the job exited 0 with a failing rank:\n%s", out)
	}
	if !strings.Contains(out, "rank 1 of 2 failed") || !strings.Contains(out, "missing.yaml") {
		t.Fatalf("the output does not name rank 1 and its error:\n%s", out)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dir, "run", train.LastCheckpoint)); err == nil {
		t.Error("rank 0 trained on although rank 1 had failed")
	}
}

// TestMPIEvalEqualsSingleProcess: mpirun -np 2 gitcap eval writes the same
// COCO results file and the same scores as one process.
func TestMPIEvalEqualsSingleProcess(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	if testing.Short() {
		t.Skip("runs mpirun: not with -short")
	}
	bin := gitcapBinary(t)
	for _, tc := range []struct {
		name   string
		images int // 0: the whole set
	}{
		{"every rank has images", 0},
		{"rank 1's shard is empty", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ann := mpiCaptionSet(t, dir, tc.images)
			eval := func(prog string, pre []string, res string) string {
				args := append(pre, bin, "eval", "--model", fixtures.Path(t, "git-tiny"), "--annotations", ann,
					"--images", fixtures.Path(t, "images"), "--batch-size", "2", "--out", res, "--json")
				if prog == bin {
					args = args[1:]
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, prog, args...)
				cmd.Env = disttest.Env()
				var so, se bytes.Buffer
				cmd.Stdout, cmd.Stderr = &so, &se
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s: %v\n%s%s", prog, err, so.String(), se.String())
				}
				if !strings.Contains(so.String(), `"CIDEr"`) {
					t.Fatalf("%s printed no scores:\n%s", prog, so.String())
				}
				return so.String() // the scores; stderr has per-rank progress
			}
			r1, r2 := filepath.Join(dir, "one.json"), filepath.Join(dir, "two.json")
			s1 := eval(bin, nil, r1)
			s2 := eval(mpirun, disttest.Args(2), r2)
			b1, err := os.ReadFile(r1)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := os.ReadFile(r2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Errorf("results files differ:\none process: %s\ntwo ranks:   %s", b1, b2)
			}
			if strings.TrimSpace(s1) != strings.TrimSpace(s2) {
				t.Errorf("scores differ:\none process: %s\ntwo ranks:   %s", s1, s2)
			}
		})
	}
}

// TestGitcapNeedsNoMPILibrary: the binary does not link libmpi, and a
// training run without an MPI launch works with libmpi hidden (a private
// mount namespace with /dev/null bound over it), where the same binary
// launched as an MPI rank reports that it cannot load MPI: the hiding
// works, so the first run proves that nothing loaded it.
func TestGitcapNeedsNoMPILibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: not with -short")
	}
	bin := gitcapBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	f.Close()
	for _, l := range libs {
		if strings.Contains(l, "mpi") {
			t.Fatalf("gitcap links %s (needed: %v)", l, libs)
		}
	}
	lib, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libmpi.so.40")
	unshare, uerr := exec.LookPath("unshare")
	if err != nil || uerr != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" && err == nil {
			t.Fatalf("CI must run this as root with unshare (%v)", uerr)
		}
		t.Skipf("needs root, unshare and an installed libmpi to hide (%v, %v)", err, uerr)
	}
	dir := t.TempDir()
	cfg := mpiTrainConfig(t, dir, "run.yaml", filepath.Join(dir, "run"), 1, 1)
	script := "mount --make-rprivate / && mount --bind /dev/null " + lib + " && " +
		bin + " train --config " + cfg + " && echo PLAIN-OK && " +
		"OMPI_COMM_WORLD_SIZE=1 " + bin + " train --config " + cfg + "; echo launched-rc=$?"
	env := disttest.Env()
	out, err := runJob(t, 2*time.Minute, env, unshare, "-m", "sh", "-c", script)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "PLAIN-OK") {
		t.Fatalf("training without MPI failed with libmpi hidden:\n%s", out)
	}
	if !strings.Contains(out, "loading the MPI library") || strings.Contains(out, "launched-rc=0") {
		t.Fatalf("with libmpi hidden, a launched rank did not fail to load it (the hiding did not work):\n%s", out)
	}
}
