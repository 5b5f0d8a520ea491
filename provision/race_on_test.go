//go:build race

package provision_test

// raceEnabled shrinks the largest runs, which the race detector slows
// several times over.
const raceEnabled = true
