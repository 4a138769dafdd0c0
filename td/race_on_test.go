//go:build race

package td_test

// raceEnabled is true under the race detector, whose slowdown (the
// emulator's SQLite most of all) makes a sound answer take longer than the
// fault matrix's short read idle timeout.
const raceEnabled = true
