//go:build !race

package provision_test

const raceEnabled = false
