// Package configs holds gitcap's model presets (HF config.json files) and
// example training configurations. They are embedded, so the gitcap binary
// carries them wherever it runs (gitcap demo uses demo.json and demo.yaml).
package configs

import "embed"

//go:embed *.json *.yaml
var files embed.FS

// Read returns the contents of a preset or training config by file name.
func Read(name string) ([]byte, error) { return files.ReadFile(name) }
