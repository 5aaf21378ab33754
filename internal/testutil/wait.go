package testutil

import "time"

// Eventually checks cond every interval until it holds (true) or within
// has passed (false): the one way the tests wait for a condition, so that
// a loaded machine only makes them slower, never wrong.
func Eventually(within, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	t := time.NewTicker(every)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}
