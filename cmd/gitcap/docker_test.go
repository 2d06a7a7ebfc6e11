package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockerStage is one FROM … section of the Dockerfile.
type dockerStage struct {
	from, name string
	lines      []string // the instructions after FROM, continuation lines joined
}

func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []dockerStage
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur += s + " "
			continue
		}
		line, cur = cur+line, ""
		f := strings.Fields(line)
		if strings.EqualFold(f[0], "FROM") {
			st := dockerStage{from: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				st.name = f[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %q before the first FROM", path, line)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func (s dockerStage) has(prefix string, parts ...string) bool {
	for _, l := range s.lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestDockerfileBuildsStaticAndRunsOnSlimDebianWithOpenBLAS checks the
// Dockerfile's shape without Docker: a Go build stage on bookworm making a
// CGO_ENABLED=0 binary, and a bookworm-slim runtime stage that installs
// libopenblas0, copies only the binary and has gitcap as its entrypoint.
func TestDockerfileBuildsStaticAndRunsOnSlimDebianWithOpenBLAS(t *testing.T) {
	stages := parseDockerfile(t, "../../Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (build, runtime)", len(stages))
	}
	build, run := stages[0], stages[1]
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{strings.HasPrefix(build.from, "golang:") && strings.HasSuffix(build.from, "-bookworm") && build.name != "", "build stage FROM golang:…-bookworm AS name"},
		{build.has("RUN", "CGO_ENABLED=0", "go build", "./cmd/gitcap"), "build stage runs CGO_ENABLED=0 go build ./cmd/gitcap"},
		{run.from == "debian:bookworm-slim", "runtime stage FROM debian:bookworm-slim"},
		{run.has("RUN", "apt-get install", "libopenblas0", "DEBIAN_FRONTEND=noninteractive"), "runtime stage apt-get installs libopenblas0"},
		{!run.has("RUN", "libopenblas-dev"), "runtime stage has no development files"},
		{run.has("COPY", "--from="+build.name, "gitcap"), "runtime stage copies the binary from the build stage"},
		{run.has("ENTRYPOINT", `["gitcap"]`), `ENTRYPOINT ["gitcap"]`},
	} {
		if !c.ok {
			t.Errorf("Dockerfile: want %s", c.what)
		}
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+string(ignore), "\n.git\n") {
		t.Errorf(".dockerignore does not leave out .git")
	}
}

// TestDockerImageRunsDemoAndCaption builds the image and runs a shortened
// demo and a caption of one of its images in it, where a Docker daemon is
// reachable; elsewhere it says so and skips.
func TestDockerImageRunsDemoAndCaption(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Docker image")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker is not installed: the image build is tested where Docker is")
	}
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon is reachable, so the image is not built here (docker info: %v: %s)", err, lastLine(out))
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("gitcap-test:%d", time.Now().UnixNano())
	dockerRun(t, docker, "build", "-t", tag, root)
	defer exec.Command(docker, "rmi", "-f", tag).Run()
	out := t.TempDir()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	v := dockerRun(t, docker, "run", "--rm", tag, "version")
	if !strings.Contains(v, "blas: OpenBLAS") {
		t.Errorf("the image's gitcap does not use OpenBLAS:\n%s", v)
	}
	demo := dockerRun(t, docker, "run", "--rm", "-v", out+":/out", tag, "demo", "--steps", "20", "--n", "60", "--out", "/out/demo")
	if !strings.Contains(demo, "held-out test CIDEr-D") {
		t.Fatalf("demo in the image printed no score:\n%s", demo)
	}
	capt := dockerRun(t, docker, "run", "--rm", "-v", out+":/out", tag, "caption",
		"--model", "/out/demo/run/checkpoint-last", "/out/demo/data/images/test/000001.png")
	if !strings.Contains(capt, "/out/demo/data/images/test/000001.png\t") {
		t.Errorf("caption in the image printed %q, want IMAGE<TAB>caption", capt)
	}
}

func dockerRun(t *testing.T, docker string, args ...string) string {
	t.Helper()
	out, err := exec.Command(docker, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
