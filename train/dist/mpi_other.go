//go:build !(linux || darwin || freebsd)

package dist

import "errors"

// OpenMPI is not available on this system.
func OpenMPI(lib string) (Comm, error) {
	return nil, errors.New("MPI is supported on Linux, macOS and FreeBSD only")
}

// MPILoaded reports whether this process has loaded an MPI library.
func MPILoaded() bool { return false }
