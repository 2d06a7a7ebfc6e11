//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package hub

import "context"

// lockFile is a no-op where flock(2) is not available.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
