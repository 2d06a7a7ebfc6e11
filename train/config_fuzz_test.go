package train

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseConfig checks the YAML run-config parser (seeds: the shipped
// configs/*.yaml). Properties: no panic; a parsed config passes Validate
// or fails it with an error (never a panic); and a config that validates
// survives WriteYAML and ParseConfig unchanged.
func FuzzParseConfig(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("..", "configs", "*.yaml"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no configs/*.yaml: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("steps: 1e400\n"))
	f.Add([]byte("train: {path: a.json, format: coco}\nmodel: m\nlr: .nan\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b)
		if err != nil {
			return
		}
		if cfg.Validate() != nil {
			return
		}
		dir, err := os.MkdirTemp("/dev/shm", "gitcap-fuzz-") // WriteYAML fsyncs: keep it off a busy disk
		if err != nil {
			dir = t.TempDir()
		} else {
			defer os.RemoveAll(dir)
		}
		path := filepath.Join(dir, "config.yaml")
		if err := cfg.WriteYAML(path); err != nil {
			t.Fatalf("writing a valid config: %v", err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(raw)
		if err != nil {
			t.Fatalf("reading back what WriteYAML wrote: %v\n%s", err, raw)
		}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, back)
		}
	})
}
