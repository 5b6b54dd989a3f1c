//go:build race

package replicate

// raceEnabled shortens the longest simulations under the race detector,
// which slows them tenfold without finding more in them.
const raceEnabled = true
