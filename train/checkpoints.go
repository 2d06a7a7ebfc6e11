package train

import (
	"path/filepath"
)

// RunDir is the run directory of a checkpoint directory (its parent:
// OUT/checkpoint-last -> OUT).
func RunDir(checkpoint string) string { return filepath.Dir(filepath.Clean(checkpoint)) }

// writeRunConfig saves the resolved configuration as OUT/config.yaml with
// out_dir "." (relative to the file), so that a run directory copied or
// moved elsewhere resumes into itself: Resume always writes into the run
// directory that holds the checkpoint.
func (c *Config) writeRunConfig() error {
	saved := *c
	saved.OutDir = "."
	return saved.WriteYAML(filepath.Join(c.OutDir, ConfigFile))
}

// resumeInto returns cfg with OutDir set to the run directory of the
// checkpoint being resumed.
func resumeInto(cfg *Config, checkpoint string) *Config {
	c := *cfg
	c.OutDir = RunDir(checkpoint)
	return &c
}
