//go:build race

package uitest

// raceEnabled: the race detector slows the pure-Go SQLite thirtyfold, so the scale
// test enrolls fewer gateways under it.
const raceEnabled = true
