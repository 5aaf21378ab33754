package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/deoss/deoss/sdk"
)

// progressBar draws a transfer's bytes, rate and time left on a terminal
// (standard error), at most ten times a second; elsewhere it stays quiet.
type progressBar struct {
	w     io.Writer
	label string
	tty   bool
	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newProgressBar(label string) *progressBar {
	info, err := os.Stderr.Stat()
	return &progressBar{w: os.Stderr, label: label, tty: err == nil && info.Mode()&os.ModeCharDevice != 0}
}

func (b *progressBar) update(p sdk.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.tty || (time.Since(b.last) < 100*time.Millisecond && p.Done < p.Total) {
		return
	}
	b.last, b.shown = time.Now(), true
	fmt.Fprintf(b.w, "\r%s", progressLine(b.label, p, time.Now()))
}

// done ends the bar's line.
func (b *progressBar) done() {
	if b.shown {
		fmt.Fprintln(b.w)
	}
}

// progressLine renders "label [=====>    ] 40% 12.0/30.0 MiB 5.1 MiB/s ETA 4s".
func progressLine(label string, p sdk.Progress, now time.Time) string {
	const width = 24
	frac := 1.0
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	rate := 0.0
	if el := now.Sub(p.Started).Seconds(); el > 0 {
		rate = float64(p.Done-p.Resumed) / el
	}
	eta := "--"
	if rate > 0 && p.Total >= p.Done {
		eta = time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s [%s] %3.0f%% %s/%s %s/s ETA %s ", label, bar, 100*frac, mib(p.Done), mib(p.Total), mib(int64(rate)), eta)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
