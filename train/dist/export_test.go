//go:build linux || darwin || freebsd

package dist

// SetByteLimit lowers the byte limit of Gather and Bcast of an MPI
// communicator, so the tests can exceed it with small buffers.
func SetByteLimit(c Comm, n int) {
	if m, ok := c.(*mpiComm); ok {
		m.limit = n
	}
}
