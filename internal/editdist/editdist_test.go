package editdist

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"restor-db", "restore-db", 1}, {"statsu", "status", 1},
		{"kitten", "sitting", 3}, {"ca", "abc", 3}, {"東京", "京東", 1}, {"recod", "record", 1},
		{"zoneid", "zone_id", 1}, {"tll", "ttl", 1},
		{strings.Repeat("a", MaxRunes+1), "a", Far}, {strings.Repeat("a", MaxRunes), "", MaxRunes},
	}
	for _, tc := range cases {
		if got := Distance(tc.a, tc.b); got != tc.d {
			t.Errorf("Distance(%.20q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
