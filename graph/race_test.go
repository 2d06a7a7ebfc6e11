//go:build race

package graph

// raceEnabled: the race detector is on. Its sync.Pool drops items at
// random, so allocation counts of code that pools (runShares) mean nothing.
const raceEnabled = true
