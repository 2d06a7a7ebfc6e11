package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockRunDirIsExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := LockRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Previous != nil {
		t.Errorf("a new directory has a previous holder: %v", l.Previous)
	}
	host, _ := os.Hostname()
	// flock belongs to the open file, so a second open in this process is
	// refused like another process would be.
	_, err = LockRunDir(dir)
	var le *LockedError
	if !errors.Is(err, ErrRunDirLocked) || !errors.As(err, &le) {
		t.Fatalf("second lock: %v", err)
	}
	if le.Holder == nil || le.Holder.PID != os.Getpid() || le.Holder.Host != host {
		t.Errorf("holder %+v, want pid %d on %s", le.Holder, os.Getpid(), host)
	}
	if want := fmt.Sprintf("in use by another training (pid %d on host %s, started ", os.Getpid(), host); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder (%q)", err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Released cleanly: the next holder finds no record.
	l, err = LockRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Previous != nil {
		t.Errorf("after a clean release the next holder sees %v", l.Previous)
	}
}

// TestLockExcludesUnderChurn locks and releases one directory from 8
// goroutines (each lock is its own open file, as in separate processes) as
// fast as they can: a release removes the lock file, and at no moment may
// two of them hold the directory.
func TestLockExcludesUnderChurn(t *testing.T) {
	dir := t.TempDir()
	var holders, max, taken atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200 && time.Now().Before(deadline); i++ {
				l, err := LockRunDir(dir)
				if errors.Is(err, ErrRunDirLocked) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for m := max.Load(); n > m && !max.CompareAndSwap(m, n); m = max.Load() {
				}
				taken.Add(1)
				time.Sleep(10 * time.Microsecond)
				holders.Add(-1)
				if err := l.Close(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if max.Load() != 1 || taken.Load() < 10 {
		t.Errorf("at most %d holders at once over %d locks, want 1 (and at least 10 locks)", max.Load(), taken.Load())
	}
}

// TestLockRecordOfDeadHolderIsReportedAndReplaced: a record in an unlocked
// lock file is what a killed holder leaves; the next run reports it in its
// log and takes the lock over.
func TestLockRecordOfDeadHolderIsReportedAndReplaced(t *testing.T) {
	dir := t.TempDir()
	dead := `{"pid":999999999,"host":"elsewhere","started":"2026-01-02T03:04:05Z"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, LockFile), []byte(dead), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cfg := &Config{OutDir: dir}
	l, err := claimRunDir(cfg, "", &log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Previous == nil || l.Previous.PID != 999999999 || l.Previous.Host != "elsewhere" {
		t.Errorf("previous holder %+v", l.Previous)
	}
	if !strings.Contains(log.String(), "pid 999999999 on host elsewhere, started 2026-01-02T03:04:05Z") || !strings.Contains(log.String(), "taking over") {
		t.Errorf("log %q does not report the takeover", log.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, LockFile))
	if !strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, os.Getpid())) {
		t.Errorf("lock file holds %q, not this process", b)
	}
}

// TestRunRefusedWhileLockedWritesNothing: a start and a resume into a held
// run directory are refused before they create or touch any file there.
func TestRunRefusedWhileLockedWritesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 2)
	if _, err := Run(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, dir)
	l, err := LockRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Resume(context.Background(), cfg, filepath.Join(dir, LastCheckpoint), nil); !errors.Is(err, ErrRunDirLocked) {
		t.Errorf("resume of a live run: %v", err)
	}
	fresh := t.TempDir()
	l2, err := LockRunDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := Run(context.Background(), tinyConfig(t, fresh, 2), nil); !errors.Is(err, ErrRunDirLocked) {
		t.Errorf("start into a held empty directory: %v", err)
	}
	if ents, _ := os.ReadDir(fresh); len(ents) != 1 {
		t.Errorf("a refused start left %d entries in out_dir, want only %s", len(ents), LockFile)
	}
	after := dirSnapshot(t, dir)
	delete(before, LockFile)
	delete(after, LockFile)
	for name, b := range before {
		if after[name] != b {
			t.Errorf("a refused resume changed %s", name)
		}
	}
}

// dirSnapshot maps every file under dir to its size and modification time.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			m[rel] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		}
		return nil
	})
	return m
}

// Helper processes: the test binary re-executed runs one training.
const (
	helperEnv        = "GITCAP_TRAIN_HELPER"          // "1" in a helper
	helperConfigEnv  = "GITCAP_TRAIN_HELPER_CONFIG"   // the run's config.yaml
	helperResumeEnv  = "GITCAP_TRAIN_HELPER_RESUME"   // a checkpoint to resume, or ""
	helperBlockAtEnv = "GITCAP_TRAIN_HELPER_BLOCK_AT" // stop (holding the run) after the log line with this prefix
	helperExitFailed = 3
)

// TestTrainHelperProcess is not a test: it is the body of the helper
// processes the tests below start. It prints "ready", waits for its stdin
// to close (the start barrier), and trains.
func TestTrainHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	cfg, err := LoadConfig(os.Getenv(helperConfigEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(helperExitFailed)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	var out io.Writer = os.Stdout
	if p := os.Getenv(helperBlockAtEnv); p != "" {
		out = &blockAfter{prefix: p}
	}
	if dir := os.Getenv(helperResumeEnv); dir != "" {
		_, err = Resume(context.Background(), cfg, dir, out)
	} else {
		_, err = Run(context.Background(), cfg, out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(helperExitFailed)
	}
	os.Exit(0)
}

// blockAfter passes log lines to stdout and, after the line starting with
// prefix, blocks the training for good (until the process is killed).
type blockAfter struct{ prefix string }

func (b *blockAfter) Write(p []byte) (int, error) {
	os.Stdout.Write(p)
	if strings.HasPrefix(string(p), b.prefix) {
		select {}
	}
	return len(p), nil
}

// trainProc is one started helper process.
type trainProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan struct{}
	lines  chan string // stdout lines after "ready"
	done   chan struct{}
	mu     sync.Mutex
	stdout strings.Builder
	stderr bytes.Buffer
	exit   int
}

// startHelper starts a helper training with config cfgPath, resuming from
// resume when it is not empty; release starts its training.
func startHelper(t *testing.T, cfgPath, resume, blockAt string) *trainProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &trainProc{ready: make(chan struct{}), lines: make(chan string, 1024), done: make(chan struct{})}
	h.cmd = exec.Command(exe, "-test.run=^TestTrainHelperProcess$")
	h.cmd.Env = append(os.Environ(), helperEnv+"=1", helperConfigEnv+"="+cfgPath, helperResumeEnv+"="+resume, helperBlockAtEnv+"="+blockAt)
	h.cmd.Stderr = &h.stderr
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		h.wait(t)
	})
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first && sc.Text() == "ready" {
				first = false
				close(h.ready)
				continue
			}
			h.mu.Lock()
			h.stdout.WriteString(sc.Text() + "\n")
			h.mu.Unlock()
			select {
			case h.lines <- sc.Text():
			default:
			}
		}
		if first {
			close(h.ready)
		}
	}()
	return h
}

// wait waits (at most 120s) for the helper to exit and records its status.
func (h *trainProc) wait(t *testing.T) int {
	select {
	case <-h.done:
	case <-time.After(120 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
		t.Errorf("helper pid %d killed after 120s", h.cmd.Process.Pid)
	}
	if h.cmd.ProcessState == nil {
		err := h.cmd.Wait()
		h.exit = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			h.exit = ee.ExitCode()
		} else if err != nil {
			h.exit = -1
		}
	}
	return h.exit
}

func (h *trainProc) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stdout.String() + h.stderr.String()
}

// waitLine waits (at most 60s) for a stdout line starting with prefix.
func (h *trainProc) waitLine(t *testing.T, prefix string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-h.lines:
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-h.done:
			t.Fatalf("helper exited before printing %q:\n%s", prefix, h.output())
		case <-timeout:
			t.Fatalf("no line %q after 60s:\n%s", prefix, h.output())
		}
	}
}

// release waits until every helper is ready, then opens their start
// barriers together.
func release(t *testing.T, hs []*trainProc) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for _, h := range hs {
		select {
		case <-h.ready:
		case <-timeout:
			t.Fatal("helpers not ready after 60s")
		}
	}
	for _, h := range hs {
		h.stdin.Close()
	}
}

// writeConfig saves cfg where helpers read it.
func writeConfig(t *testing.T, cfg *Config) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.yaml")
	if err := cfg.WriteYAML(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkLog requires every line of a metrics log to be a whole record that
// parses, and the log to read as exactly the records of steps 1..n (and no
// torn line, since these runs were never killed mid-write).
func checkLog(t *testing.T, dir string, n int) {
	t.Helper()
	path := filepath.Join(dir, MetricsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end in a newline: %q", path, b)
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var r Record
		if !json.Valid([]byte(l)) || r.UnmarshalJSON([]byte(l)) != nil {
			t.Errorf("%s:%d does not parse: %q", path, i+1, l)
		}
	}
	recs, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, r := range recs {
		steps = append(steps, r.Step)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("%s reads as steps %v, want %v:\n%s", path, steps, want, b)
	}
}

// raceConfig is the smallest training that still writes everything a run
// writes: 3 steps, a record per step, one checkpoint at the end.
func raceConfig(t *testing.T, out string, steps int) *Config {
	cfg := tinyConfig(t, out, steps)
	cfg.LogEvery, cfg.SaveEvery, cfg.Workers = 1, 1000, 1
	return cfg
}

// TestSimultaneousStartsOneRuns starts 8 trainings into one out_dir at the
// same instant, 20 times (2 with -short): each time exactly one runs, the
// others are refused naming it, and its metrics.jsonl holds every record,
// each line whole.
func TestSimultaneousStartsOneRuns(t *testing.T) {
	const procs, steps = 8, 3
	rounds := 20
	if testing.Short() {
		rounds = 2
	}
	start := time.Now()
	lockRefusals := 0
	for round := 0; round < rounds; round++ {
		out := filepath.Join(t.TempDir(), "run")
		cfgPath := writeConfig(t, raceConfig(t, out, steps))
		hs := make([]*trainProc, procs)
		for i := range hs {
			hs[i] = startHelper(t, cfgPath, "", "")
		}
		release(t, hs)
		var winners []*trainProc
		for _, h := range hs {
			if h.wait(t) == 0 {
				winners = append(winners, h)
			}
		}
		if len(winners) != 1 {
			for _, h := range hs {
				t.Logf("pid %d exit %d:\n%s", h.cmd.Process.Pid, h.exit, h.output())
			}
			t.Fatalf("round %d: %d of %d simultaneous starts ran, want exactly 1", round, len(winners), procs)
		}
		win := winners[0]
		for _, h := range hs {
			if h == win {
				continue
			}
			o := h.output()
			switch {
			case h.exit != helperExitFailed:
				t.Errorf("round %d: a refused start exited %d:\n%s", round, h.exit, o)
			case strings.Contains(o, "in use by another training"):
				lockRefusals++
				if !strings.Contains(o, "(pid "+strconv.Itoa(win.cmd.Process.Pid)+" on host ") {
					t.Errorf("round %d: refusal does not name the winner (pid %d):\n%s", round, win.cmd.Process.Pid, o)
				}
			case !strings.Contains(o, "already holds a run"):
				t.Errorf("round %d: unexpected failure:\n%s", round, o)
			}
		}
		if !strings.Contains(win.output(), fmt.Sprintf("step %d/%d", steps, steps)) {
			t.Errorf("round %d: the winner did not finish:\n%s", round, win.output())
		}
		checkLog(t, out, steps)
	}
	if lockRefusals == 0 {
		t.Error("no start was refused by the lock: the starts were not simultaneous and the test proved nothing")
	}
	t.Logf("%d rounds of %d starts in %v; %d of %d refusals by the lock",
		rounds, procs, time.Since(start).Round(time.Millisecond), lockRefusals, rounds*(procs-1))
}

// TestResumeRacesFreshStart resumes an interrupted run while three fresh
// starts into its out_dir begin at the same instant: the fresh starts are
// all refused, the resume runs to the end, its log reads as steps 1..n, and
// its weights are those of the uninterrupted run.
func TestResumeRacesFreshStart(t *testing.T) {
	const steps = refSteps
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	want := referenceWeights(t)
	for round := 0; round < rounds; round++ {
		out := t.TempDir()
		cfg := raceConfig(t, out, steps)
		ctx, cancel := context.WithCancel(context.Background())
		sum, err := Run(ctx, cfg, &cancelAfter{n: 2, cancel: cancel})
		cancel()
		if err != nil || !sum.Interrupted || sum.Steps != 2 {
			t.Fatalf("interrupting the run: %+v, %v", sum, err)
		}
		cfgPath := writeConfig(t, cfg)
		res := startHelper(t, cfgPath, filepath.Join(out, LastCheckpoint), "")
		hs := []*trainProc{res}
		for i := 0; i < 3; i++ {
			hs = append(hs, startHelper(t, cfgPath, "", ""))
		}
		release(t, hs)
		for _, h := range hs {
			h.wait(t)
		}
		if res.exit != 0 || !strings.Contains(res.output(), fmt.Sprintf("step %d/%d", steps, steps)) {
			t.Errorf("round %d: the resume exited %d:\n%s", round, res.exit, res.output())
		}
		for _, h := range hs[1:] {
			if h.exit != helperExitFailed || !strings.Contains(h.output(), "already holds a run") {
				t.Errorf("round %d: a fresh start into the run exited %d:\n%s", round, h.exit, h.output())
			}
		}
		checkLog(t, out, steps)
		sameWeights(t, want, weights(t, filepath.Join(out, LastCheckpoint)))
	}
}

// refSteps is the length of the runs that are interrupted and resumed.
const refSteps = 4

var reference struct {
	once sync.Once
	w    map[string][]float32
	err  error
}

// referenceWeights are the final weights of the uninterrupted
// raceConfig(refSteps) run, trained once per test binary.
func referenceWeights(t *testing.T) map[string][]float32 {
	t.Helper()
	reference.once.Do(func() {
		dir, err := os.MkdirTemp("", "gitcap-ref-")
		if err != nil {
			reference.err = err
			return
		}
		defer os.RemoveAll(dir)
		if _, err := Run(context.Background(), raceConfig(t, dir, refSteps), nil); err != nil {
			reference.err = err
			return
		}
		reference.w = weights(t, filepath.Join(dir, LastCheckpoint))
	})
	if reference.err != nil {
		t.Fatal(reference.err)
	}
	if reference.w == nil {
		t.Fatal("the reference run failed (see the first test that needed it)")
	}
	return reference.w
}

func sameWeights(t *testing.T, want, got map[string][]float32) {
	t.Helper()
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
		}
		for i := range w {
			if w[i] != g[i] {
				t.Fatalf("%s[%d] = %g, uninterrupted run %g", name, i, g[i], w[i])
			}
		}
	}
}

// TestKilledRunIsTakenOver stops a training (holding its out_dir) at step
// 3, after its checkpoint at step 2: a --resume is refused naming it; then
// it is killed with SIGKILL, which leaves its record in the lock file, and a
// --resume takes the lock over with a log line, finishes the run and
// matches the uninterrupted weights.
func TestKilledRunIsTakenOver(t *testing.T) {
	const steps = refSteps
	want := referenceWeights(t)
	out := t.TempDir()
	cfg := raceConfig(t, out, steps)
	cfg.SaveEvery = 2
	stop := fmt.Sprintf("step 3/%d", steps)
	h := startHelper(t, writeConfig(t, cfg), "", stop)
	release(t, []*trainProc{h})
	h.waitLine(t, stop)
	pid := h.cmd.Process.Pid

	last := filepath.Join(out, LastCheckpoint)
	_, err := Resume(context.Background(), nil, last, nil)
	if !errors.Is(err, ErrRunDirLocked) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d on host ", pid)) {
		t.Fatalf("resume of the live run: %v", err)
	}

	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	if b, _ := os.ReadFile(filepath.Join(out, LockFile)); !strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, pid)) {
		t.Fatalf("the killed run left %q in the lock file", b)
	}
	var log strings.Builder
	sum, err := Resume(context.Background(), nil, last, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if sum.Steps != steps {
		t.Errorf("resumed run ended at step %d", sum.Steps)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("(pid %d on host ", pid)) || !strings.Contains(log.String(), "taking over its lock") {
		t.Errorf("the takeover of the killed run's lock is not logged:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(out, LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after a clean finish: %v", err)
	}
	checkLog(t, out, steps)
	sameWeights(t, want, weights(t, last))
}
