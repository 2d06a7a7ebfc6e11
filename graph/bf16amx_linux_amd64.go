package graph

import (
	"fmt"
	"syscall"
)

// requestAMXPermission asks Linux for the tile data state (XFEATURE 18) for
// the whole process: without it the first tile instruction faults. Threads
// created later inherit the permission.
func requestAMXPermission() error {
	const archReqXcompPerm, xfeatureXTileData = 0x1023, 18
	if _, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXTileData, 0); errno != 0 {
		return fmt.Errorf("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): %v", errno)
	}
	return nil
}
