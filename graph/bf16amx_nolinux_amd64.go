//go:build amd64 && !linux

package graph

import "errors"

// requestAMXPermission: only Linux is known to need (and grant) the tile
// state through arch_prctl; elsewhere AMX stays off.
func requestAMXPermission() error { return errors.New("AMX is only enabled on linux") }
