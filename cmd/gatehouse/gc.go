package main

import "runtime/debug"

// serveGCPercent is the garbage collector's target (GOGC) under serve when
// the environment sets none. Go's default of 100 lets the heap grow to twice
// what is live; with thousands of long polls held, what is live is mostly
// their connections, and the garbage of the re-polls around them then
// costs as much again: in BenchmarkWaitingFleet (3,000 held waits) 50 took
// the heap from 109 to 84 MiB and RSS per held wait from 70 to 63 KiB for
// no CPU that the run could tell apart. GOGC, and GOMEMLIMIT as a ceiling,
// still win when set.
const serveGCPercent = 50

// tuneGC sets the collector's target for serve unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}
