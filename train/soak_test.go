package train

// The soak tests run only with GITCAP_SOAK=1 (`make soak`): they take a few
// minutes, too long for `make test`.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
)

func soakOnly(t *testing.T) {
	if os.Getenv("GITCAP_SOAK") == "" {
		t.Skip("soak test: run with GITCAP_SOAK=1 (make soak)")
	}
}

// heapAfterGC is the live heap after a full collection.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSoakCaptionsKeepMemoryFlat captions 1,000 images in one process with
// the fixture git-tiny model (greedy, and every fourth one with 3 beams)
// and checks that the heap after GC and the goroutine count do not grow
// between caption 100 (everything warmed up) and caption 1,000, and that
// the same image always gets the same caption.
func TestSoakCaptionsKeepMemoryFlat(t *testing.T) {
	soakOnly(t)
	const total, warm = 1000, 100
	p, err := caption.LoadPipeline(fixtures.Path(t, "git-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := filepath.Glob(filepath.Join(fixtures.Path(t, "images"), "*"))
	if err != nil || len(imgs) == 0 {
		t.Fatalf("no fixture images: %v", err)
	}
	g := p.Model.NewGenerator()
	defer g.Close()
	first := map[string]string{}
	var heap0 uint64
	var gor0 int
	start := time.Now()
	var warmAt time.Time
	for i := 0; i < total; i++ {
		if i == warm {
			heap0, gor0, warmAt = heapAfterGC(), runtime.NumGoroutine(), time.Now()
		}
		im := imgs[i%len(imgs)]
		opts := gitmodel.GenerateOptions{MaxLength: 20, NumBeams: 1}
		key := im
		if i%4 == 3 {
			opts.NumBeams, key = 3, im+" beam"
		}
		caps, err := p.Caption(context.Background(), g, []caption.Sample{{Name: im, Frames: []string{im}}}, "", 1, opts, nil)
		if err != nil || len(caps) != 1 || caps[0].Err != nil {
			t.Fatalf("caption %d (%s): %v %+v", i, im, err, caps)
		}
		if prev, ok := first[key]; !ok {
			first[key] = caps[0].Text
		} else if prev != caps[0].Text {
			t.Fatalf("caption %d: %s got %q, earlier %q", i, key, caps[0].Text, prev)
		}
	}
	heap1, gor1 := heapAfterGC(), runtime.NumGoroutine()
	elapsed := time.Since(start)
	t.Logf("SOAK captions: %d captions in %v (%.1f ms each after warm-up); heap after GC at caption %d: %.2f MiB, at caption %d: %.2f MiB (%+.2f%%); goroutines %d -> %d",
		total, elapsed.Round(time.Millisecond), float64(time.Since(warmAt).Milliseconds())/float64(total-warm),
		warm, float64(heap0)/(1<<20), total, float64(heap1)/(1<<20), 100*(float64(heap1)-float64(heap0))/float64(heap0), gor0, gor1)
	// Flat: at most 5% (or 1 MiB) of growth over 900 captions; a leak of a
	// single 4-byte slot per token would already exceed it.
	if heap1 > heap0+max(heap0/20, 1<<20) {
		t.Errorf("heap grew from %d to %d bytes over %d captions", heap0, heap1, total-warm)
	}
	if gor1 > gor0 {
		t.Errorf("goroutines grew from %d to %d", gor0, gor1)
	}
}

// Environment of the soak training child process.
const (
	soakChildOut  = "GITCAP_SOAK_CHILD_OUT"
	soakChildCaps = "GITCAP_SOAK_CHILD_CAPS"
)

const soakSteps = 200

// soakConfig is the 200-step run: the fixture git-tiny model on the six
// fixture shape images, with dropout, random crops and flips and a cosine
// schedule so that every source of randomness must resume exactly, and a
// checkpoint every 10 steps.
func soakConfig(t *testing.T, out, caps string) *Config {
	c := DefaultConfig()
	c.Model = fixtures.Path(t, "git-tiny")
	c.Train = DataConfig{Path: caps, Format: "coco", Images: fixtures.Path(t, "images")}
	c.OutDir = out
	c.Steps, c.Epochs = soakSteps, 0
	c.BatchSize, c.GradAccum = 2, 2
	c.LR, c.WarmupSteps, c.Schedule = 1e-3, 10, ScheduleCosine
	c.Augment.RandomResizedCrop, c.Augment.HFlip = true, true
	c.LogEvery, c.SaveEvery = 10, 10
	c.Workers = 2
	c.Seed = 11
	return &c
}

// TestSoakTrainChild is the training process the kill test starts and
// kills; it does nothing unless started by it.
func TestSoakTrainChild(t *testing.T) {
	out := os.Getenv(soakChildOut)
	if out == "" {
		t.Skip("started by TestSoakKilledTrainingResumesExactly")
	}
	cfg := soakConfig(t, out, os.Getenv(soakChildCaps))
	var err error
	if _, serr := os.Stat(filepath.Join(out, LastCheckpoint)); serr == nil || dirExists(filepath.Join(out, LastCheckpoint+".old")) {
		_, err = Resume(context.Background(), cfg, filepath.Join(out, LastCheckpoint), nil)
	} else {
		_, err = Run(context.Background(), cfg, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// savedStep is the step of out's last checkpoint, -1 if none is readable.
func savedStep(out string) int {
	b, err := os.ReadFile(filepath.Join(out, LastCheckpoint, StateFile))
	if err != nil {
		return -1
	}
	var st TrainerState
	if json.Unmarshal(b, &st) != nil {
		return -1
	}
	return st.Step
}

// TestSoakKilledTrainingResumesExactly trains 200 steps uninterrupted, and
// again in child processes killed with SIGKILL three times at random
// moments (a random time after a random checkpoint, so some kills land
// during a save) and resumed each time; the final weights must be byte
// for byte those of the uninterrupted run. The seed is logged.
func TestSoakKilledTrainingResumesExactly(t *testing.T) {
	soakOnly(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GITCAP_SOAK_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 13))
	t.Logf("kill schedule seed %d (set GITCAP_SOAK_SEED to repeat)", seed)
	caps := shapesSet(t)
	base := scratchBase(t)

	start := time.Now()
	full := filepath.Join(base, "full")
	if _, err := Run(context.Background(), soakConfig(t, full, caps), nil); err != nil {
		t.Fatal(err)
	}
	fullTime := time.Since(start)

	start = time.Now()
	part := filepath.Join(base, "killed")
	var kills []string
	for k, lo := range []int{20, 80, 140} {
		target := lo + 10*rng.IntN(5) // a checkpoint step in [lo, lo+40]
		delay := time.Duration(rng.IntN(400)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^TestSoakTrainChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), soakChildOut+"="+part, soakChildCaps+"="+caps)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(3 * time.Minute)
	wait:
		for {
			select {
			case err := <-exited:
				t.Fatalf("child %d exited (%v) before its kill at step %d:\n%s", k, err, target, stderr.String())
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("child %d did not reach step %d in 3 minutes", k, target)
			case <-time.After(10 * time.Millisecond):
				if savedStep(part) >= target {
					break wait
				}
			}
		}
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		<-exited
		kills = append(kills, fmt.Sprintf("after checkpoint %d + %v (last checkpoint on disk: step %d)", target, delay, savedStep(part)))
	}
	// The last leg runs to the end in this process.
	if _, err := Resume(context.Background(), soakConfig(t, part, caps), filepath.Join(part, LastCheckpoint), nil); err != nil {
		t.Fatal(err)
	}
	killedTime := time.Since(start)
	if s := savedStep(part); s != soakSteps {
		t.Fatalf("resumed run ended at step %d, want %d", s, soakSteps)
	}
	a, err := os.ReadFile(filepath.Join(full, LastCheckpoint, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(part, LastCheckpoint, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SOAK training: %d steps uninterrupted in %v; killed (SIGKILL) %s; resumed to the end in %v in all; weights %d bytes, identical: %v",
		soakSteps, fullTime.Round(time.Millisecond), kills, killedTime.Round(time.Millisecond), len(a), bytes.Equal(a, b))
	if !bytes.Equal(a, b) {
		t.Fatal("the killed-and-resumed run's weights differ from the uninterrupted run's")
	}
}

// scratchBase is a directory for the soak runs, in memory when possible
// (/dev/shm): SIGKILL tests the process dying, not the disk, and 40
// checkpoints with fsync on a shared disk would dominate the run time.
func scratchBase(t *testing.T) string {
	d, err := os.MkdirTemp("/dev/shm", "gitcap-soak-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
