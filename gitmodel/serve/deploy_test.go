package serve

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestKubernetesExampleProbesTheServer: deploy/kubernetes/gitcap.yaml has a
// Deployment, Service and HorizontalPodAutoscaler; the container runs
// `serve --addr 0.0.0.0:8080` and its probes name endpoints that answer 200.
func TestKubernetesExampleProbesTheServer(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "kubernetes", "gitcap.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	type doc struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Template struct {
				Spec struct {
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					Containers                    []struct {
						Args      []string `yaml:"args"`
						Ports     []struct{ Name string }
						Readiness probe `yaml:"readinessProbe"`
						Liveness  probe `yaml:"livenessProbe"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	var kinds []string
	var deploy *doc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d doc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		kinds = append(kinds, d.Kind)
		if d.Kind == "Deployment" {
			deploy = &d
		}
	}
	for _, k := range []string{"Deployment", "Service", "HorizontalPodAutoscaler"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("%s has no %s (kinds %v)", path, k, kinds)
		}
	}
	if deploy == nil || len(deploy.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one Deployment with one container", path)
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "serve" || !slices.Contains(c.Args, "--addr=0.0.0.0:8080") {
		t.Errorf("container args %v: want serve ... --addr=0.0.0.0:8080", c.Args)
	}
	if c.Readiness.HTTPGet.Path != "/readyz" || c.Liveness.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %q, liveness %q", c.Readiness.HTTPGet.Path, c.Liveness.HTTPGet.Path)
	}
	// Kubernetes kills the pod after terminationGracePeriodSeconds: the
	// drain delay and the grace must fit in it.
	var wait time.Duration
	for _, a := range c.Args {
		for _, f := range []string{"--grace=", "--drain-delay="} {
			if v, ok := strings.CutPrefix(a, f); ok {
				d, err := time.ParseDuration(v)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				wait += d
			}
		}
	}
	if limit := time.Duration(deploy.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; wait == 0 || wait >= limit {
		t.Errorf("--drain-delay + --grace = %s, terminationGracePeriodSeconds %s: the drain must fit before the kill", wait, limit)
	}
	_, hs := newServer(t, "git-tiny", Options{})
	for _, p := range []string{c.Readiness.HTTPGet.Path, c.Liveness.HTTPGet.Path} {
		resp, err := http.Get(hs.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}
