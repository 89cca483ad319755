package human

import (
	"testing"
	"time"
)

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 512: "512 B", 1024: "1.0 KiB", 8602: "8.4 KiB", 3435973837: "3.2 GiB", 1<<63 - 1: "8.0 EiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 42 * time.Second: "42s", 17 * time.Minute: "17m",
		3*time.Hour + 12*time.Minute: "3h12m", 5 * time.Hour: "5h", 52 * time.Hour: "2d4h", 72 * time.Hour: "3d"} {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
}
