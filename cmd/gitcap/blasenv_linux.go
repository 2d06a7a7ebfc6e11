package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/cpu"
)

// ensureBLASEnv restarts the process with OPENBLAS_CORETYPE set when the
// user has not set it. OpenBLAS reads it once, when the library loads
// (before main runs), and on some virtual machines it misdetects an
// AVX-512 CPU as a generic one and runs about 5x slower. Setting it
// ourselves means nobody has to know. It returns only if no restart
// happened.
func ensureBLASEnv() {
	if os.Getenv("OPENBLAS_CORETYPE") != "" || os.Getenv("GITCAP_NO_REEXEC") != "" {
		return
	}
	core := ""
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL:
		core = "SkylakeX"
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		core = "Haswell"
	default:
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "OPENBLAS_CORETYPE="+core, "GITCAP_NO_REEXEC=1")
	_ = syscall.Exec(exe, os.Args, env) // on failure, carry on with the default
}
