package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// A run directory (Config.OutDir) belongs to one training at a time. The
// owner holds an exclusive flock(2) on OUT/.gitcap.lock from before anything
// in the directory is created or opened for writing until it exits; the file
// holds the owner's pid, host and start time so that a refused start can
// name it. The kernel drops the lock when its holder dies, however it dies
// (kill -9 included), so a lock is never stale. A clean release removes the
// file (while still holding the lock; a process that locked the removed file
// in the meantime sees that the path no longer names it and starts over), so
// a record found by the next holder is the trace of a run that ended
// without releasing the lock: it is reported and replaced.
//
// Under MPI only rank 0 calls LockRunDir and writes into the run directory;
// the other ranks take no lock and write nothing there.

// LockFile is the lock file's name inside a run directory.
const LockFile = ".gitcap.lock"

// ErrRunDirLocked is what LockRunDir's error wraps when another process
// holds the run directory.
var ErrRunDirLocked = errors.New("run directory in use")

// LockHolder identifies the process that holds (or held) a run directory.
type LockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

func (h *LockHolder) String() string {
	if h == nil {
		return "a process that has not identified itself yet"
	}
	return fmt.Sprintf("pid %d on host %s, started %s", h.PID, h.Host, h.Started.Format(time.RFC3339))
}

// LockedError is the error of LockRunDir when the directory is held.
type LockedError struct {
	Dir    string
	Holder *LockHolder // nil when the holder's record could not be read
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("out_dir %s is in use by another training (%s): wait for it to finish or stop it, or choose another out_dir",
		e.Dir, e.Holder)
}

func (e *LockedError) Is(target error) bool { return target == ErrRunDirLocked }

// RunLock is the exclusive ownership of a run directory, held until Close.
type RunLock struct {
	f   *os.File
	dir string
	// Previous is the record of an earlier holder that ended without
	// releasing the lock (it was killed, or its machine went down), nil
	// when the lock was free and clean.
	Previous *LockHolder
}

// LockRunDir creates dir if needed and takes its lock without waiting. If
// another process holds it, the error (an *LockedError, matching
// ErrRunDirLocked) names that process.
func LockRunDir(dir string) (*RunLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	var f *os.File
	for attempt := 0; ; attempt++ {
		// Never O_TRUNC: the file may be another process's live lock.
		var err error
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			return nil, fmt.Errorf("run directory lock: %w", err)
		}
		held, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("run directory lock %s: %w", path, err)
		}
		if !held {
			h := waitHolder(f)
			f.Close()
			return nil, &LockedError{Dir: dir, Holder: h}
		}
		// The file locked must still be the one at path: a holder
		// releasing removes it, and another process may have created and
		// locked a new one since.
		ours, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(ours, now) {
			break
		}
		f.Close()
		if attempt >= 100 {
			return nil, fmt.Errorf("run directory lock %s keeps being replaced", path)
		}
	}
	l := &RunLock{f: f, dir: dir, Previous: readHolder(f)}
	host, _ := os.Hostname()
	b, _ := json.Marshal(LockHolder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second)})
	if err := writeRecord(f, append(b, '\n')); err != nil {
		l.Close()
		return nil, fmt.Errorf("run directory lock %s: %w", path, err)
	}
	return l, nil
}

// Close removes the lock file and releases the lock. It may be called more
// than once.
func (l *RunLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	var err error
	if rerr := os.Remove(filepath.Join(l.dir, LockFile)); rerr != nil {
		// Keep the file, but empty: an empty record is a clean release.
		err = l.f.Truncate(0)
	}
	if uerr := unlock(l.f); err == nil {
		err = uerr
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("releasing the lock of %s: %w", l.dir, err)
	}
	return nil
}

func writeRecord(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// readHolder parses the record in f, nil when it is empty or unreadable.
func readHolder(f *os.File) *LockHolder {
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) || n == 0 {
		return nil
	}
	var h LockHolder
	if json.Unmarshal(b[:n], &h) != nil || h.PID <= 0 {
		return nil
	}
	return &h
}

// waitHolder reads the record of the live holder of f's lock. A holder
// writes its record just after taking the lock, so the file may still be
// empty, or hold the record of an earlier holder that was killed: wait
// briefly for a record naming a live process.
func waitHolder(f *os.File) *LockHolder {
	host, _ := os.Hostname()
	var h *LockHolder
	for deadline := time.Now().Add(time.Second); ; {
		h = readHolder(f)
		if h != nil && (h.Host != host || processAlive(h.PID)) {
			return h
		}
		if time.Now().After(deadline) {
			return h
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// claimRunDir is where run starts, before anything in cfg.OutDir is created
// or opened for writing: it takes the directory's lock, logging a record
// left by a killed holder, and refuses a new run (resumeDir "") into a
// directory that already holds one. The check is made again under the lock,
// so it also holds against a run that started at the same instant; the
// first check, before locking, only spares a start that is bound to be
// refused from holding the lock and so refusing a concurrent --resume.
func claimRunDir(cfg *Config, resumeDir string, out io.Writer) (*RunLock, error) {
	if resumeDir == "" {
		if err := checkNoRun(cfg.OutDir); err != nil {
			return nil, err
		}
	}
	l, err := LockRunDir(cfg.OutDir)
	if err != nil {
		return nil, err
	}
	if l.Previous != nil {
		fmt.Fprintf(out, "out_dir %s: the training that held it (%s) ended without releasing it (killed?); taking over its lock\n",
			cfg.OutDir, l.Previous)
	}
	if resumeDir == "" {
		if err := checkNoRun(cfg.OutDir); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// checkNoRun refuses a directory holding an earlier run: a new run must not
// mix its metrics into, or replace the checkpoints of, another one.
func checkNoRun(dir string) error {
	for _, name := range []string{LastCheckpoint, LastCheckpoint + ".old", BestCheckpoint, MetricsFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("out_dir %s already holds a run (%s): resume it with --resume %s, or choose another out_dir",
				dir, name, filepath.Join(dir, LastCheckpoint))
		}
	}
	return nil
}
