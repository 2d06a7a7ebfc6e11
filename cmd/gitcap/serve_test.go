package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data/fixtures"
)

const serveChildEnv = "GITCAP_SERVE_CHILD_ARGS"

// TestServeChildProcess is the child of TestServeDrainsOnSIGTERM: it runs
// gitcap's main with the arguments in the environment (and does nothing in
// a normal test run).
func TestServeChildProcess(t *testing.T) {
	args := os.Getenv(serveChildEnv)
	if args == "" {
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatal(err)
	}
	os.Exit(realMain(argv, os.Stdout, os.Stderr))
}

// TestServeDrainsOnSIGTERM runs `gitcap serve` as a process, starts a long
// request, sends SIGTERM: the request still gets its caption, the server
// logs the drain and exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	model := fixtures.Path(t, "git-tiny")
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChildProcess$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+mustJSON(t, []string{"serve", "--model", model, "--addr", "127.0.0.1:0", "--log-format", "json", "--max-length-cap", "60"}))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited; its log:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("no log line within 30 s; log so far:\n%s", strings.Join(log, "\n"))
		}
		return ""
	}
	var url string
	for url == "" {
		var rec struct {
			Msg, Addr string
		}
		if json.Unmarshal([]byte(next()), &rec) == nil && rec.Msg == "listening" {
			url = "http://" + rec.Addr
		}
	}
	img, err := os.ReadFile(fixtures.Path(t, "images", "cats.png"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"images": []any{map[string]string{"data": base64.StdEncoding.EncodeToString(img)}},
		"num_beams": 8, "max_length": 60, "min_new_tokens": 58})
	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Post(url+"/v1/captions", "application/json", bytes.NewReader(body))
		if err != nil {
			done <- answer{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, string(b)}
	}()
	busy := regexp.MustCompile(`(?m)^gitcap_busy_rows [1-9]`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if busy.Match(b) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the long request never reached the batch")
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.status != 200 || !strings.Contains(a.body, `"caption"`) {
		t.Errorf("in-flight request during the drain: %d %s", a.status, a.body)
	}
	for l := range lines {
		log = append(log, l)
	}
	err = cmd.Wait()
	if err != nil {
		t.Errorf("gitcap serve after SIGTERM: %v (want exit 0); log:\n%s", err, strings.Join(log, "\n"))
	}
	all := strings.Join(log, "\n")
	for _, want := range []string{`"msg":"draining"`, `"msg":"drained"`, `"msg":"request"`, `"status":200`} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %s:\n%s", want, all)
		}
	}
}

// TestServeRejectsBadFlags: bad command lines exit 2 with a message, an
// empty key file is an error naming it.
func TestServeRejectsBadFlags(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "key")
	os.WriteFile(empty, []byte("\n"), 0o600)
	model := fixtures.Path(t, "git-tiny")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, 2, "--model is required"},
		{[]string{"serve", "--model", model, "--batch-size", "0"}, 2, "--batch-size"},
		{[]string{"serve", "--model", model, "--log-format", "xml"}, 2, "--log-format"},
		{[]string{"serve", "--model", model, "--prefix-graphs", "0"}, 2, "--prefix-graphs"},
		{[]string{"serve", "--model", model, "--max-body-reads", "0"}, 2, "--max-body-reads"},
		{[]string{"serve", "--model", model, "--min-upload-rate", "-1"}, 2, "--min-upload-rate"},
		{[]string{"serve", "--model", model, "--queue-bytes", "1000"}, 2, "--queue-bytes (1000) must hold a request body"},
		{[]string{"serve", "--model", model, "--upload-grace", "0s"}, 2, "--upload-grace"},
		{[]string{"serve", "--model", model, "--queue", "4"}, 2, "--queue (4 images) must hold a request of --max-images (16)"},
		{[]string{"serve", "--model", model, "extra"}, 2, "unexpected arguments"},
		{[]string{"serve", "--model", model, "--api-key-file", empty}, 1, empty + " is empty"},
		{[]string{"serve", "--model", model, "--api-key-file", empty + ".missing"}, 1, "no such file"},
	} {
		var out, errb bytes.Buffer
		code := realMain(c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
