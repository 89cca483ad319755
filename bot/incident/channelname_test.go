package incident

import (
	"strings"
	"testing"
	"time"
)

func TestChannelName(t *testing.T) {
	day := time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC)
	long := strings.Repeat("very-long-service-", 6)
	tests := []struct {
		name            string
		prefix, service string
		t               time.Time
		attempt         int
		want            string
	}{
		{"basic", "incident", "lstm-pfd", day, 1, "incident-lstm-pfd-20261123"},
		{"attempt 0 is the first", "incident", "lstm-pfd", day, 0, "incident-lstm-pfd-20261123"},
		{"collision", "incident", "lstm-pfd", day, 2, "incident-lstm-pfd-20261123-2"},
		{"third", "incident", "inflow", day, 3, "incident-inflow-20261123-3"},
		{"date in UTC", "incident", "inflow", time.Date(2026, 11, 24, 1, 0, 0, 0, time.FixedZone("CET", 3600*3)), 1, "incident-inflow-20261123"},
		{"empty prefix", "", "inflow", day, 1, "incident-inflow-20261123"},
		{"uppercase and spaces", "INC", "LSTM PFD", day, 1, "inc-lstm-pfd-20261123"},
		{"odd characters", "#dr!", "a..b", day, 1, "dr-a-b-20261123"},
		{"underscore kept", "dr_incident", "x", day, 1, "dr_incident-x-20261123"},
		{"long service shortened", "incident", long, day, 12, "incident-" + strings.TrimRight(long[:80-len("incident-")-len("-20261123-12")], "-") + "-20261123-12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChannelName(tt.prefix, tt.service, tt.t, tt.attempt)
			if got != tt.want {
				t.Fatalf("ChannelName(%q, %q, %v, %d) = %q, want %q", tt.prefix, tt.service, tt.t, tt.attempt, got, tt.want)
			}
			if len(got) > MaxChannelName {
				t.Fatalf("%q is %d characters", got, len(got))
			}
		})
	}
}

func TestChannelNameAlwaysValid(t *testing.T) {
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, prefix := range []string{"", "x", strings.Repeat("p", 200), "Ünïcode prefix"} {
		for _, service := range []string{"", "s", strings.Repeat("S-", 100), "日本"} {
			for _, attempt := range []int{1, 2, 99, 1000} {
				got := ChannelName(prefix, service, day, attempt)
				if len(got) > MaxChannelName || got != strings.ToLower(got) || strings.Contains(got, "--") {
					t.Errorf("ChannelName(%q, %q, %d) = %q", prefix, service, attempt, got)
				}
				if !strings.Contains(got, "-20260102") {
					t.Errorf("ChannelName(%q, %q, %d) = %q lost the date", prefix, service, attempt, got)
				}
				for _, r := range got {
					if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
						t.Errorf("ChannelName(%q, %q, %d) = %q has %q", prefix, service, attempt, got, r)
					}
				}
			}
		}
	}
}

func TestSecureChannelName(t *testing.T) {
	day := time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC)
	if got := SecureChannelName("", "LSTM-PFD", day, 1); got != "incident-lstm-pfd-20261123-sec" {
		t.Errorf("basic = %q", got)
	}
	if got := SecureChannelName("ops", "inflow", day, 2); got != "ops-inflow-20261123-sec-2" {
		t.Errorf("collision = %q", got)
	}
	long := strings.Repeat("very-long-service-", 6)
	for _, attempt := range []int{1, 2, 99} {
		got := SecureChannelName("incident", long, day, attempt)
		if len(got) > MaxChannelName || !strings.Contains(got, "-20261123-sec") || strings.Contains(got, "--") {
			t.Errorf("long name, attempt %d = %q (%d chars)", attempt, got, len(got))
		}
	}
}
