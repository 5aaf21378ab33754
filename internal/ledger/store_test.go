package ledger

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

// TestOverlayIterate compares the streaming merge with a plain model: random
// committed keys, random block writes and deletes, random early stops.
func TestOverlayIterate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		base := NewMemKV()
		model := map[string]string{}
		for range rng.IntN(20) {
			k := fmt.Sprintf("p/%02d", rng.IntN(30))
			base.m[k] = []byte("b" + k)
			model[k] = "b" + k
		}
		base.m["q/other"] = []byte("x")
		o := newOverlay(base)
		for range rng.IntN(20) {
			k := fmt.Sprintf("p/%02d", rng.IntN(30))
			if rng.IntN(3) == 0 {
				o.del(k)
				delete(model, k)
			} else {
				o.set(k, []byte("o"+k))
				model[k] = "o" + k
			}
		}
		var want []string
		for k := range model {
			want = append(want, k+"="+model[k])
		}
		sort.Strings(want)
		stop := rng.IntN(len(want) + 2)
		var got []string
		o.iterate("p/", func(k string, v []byte) bool {
			got = append(got, k+"="+string(v))
			return len(got) < stop
		})
		if stop < len(want) {
			want = want[:max(stop, 1)]
			if stop == 0 {
				want = want[:min(1, len(want))]
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d (stop %d):\n got %v\nwant %v", round, stop, got, want)
		}
	}
}
