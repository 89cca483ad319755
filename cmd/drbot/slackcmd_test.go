package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestSlackManifestCommand: `drbot slack manifest` prints the files kept in
// deploy/slack, and the URL an operator gives.
func TestSlackManifestCommand(t *testing.T) {
	for file, args := range map[string][]string{
		"manifest.yaml":             {"slack", "manifest"},
		"manifest-socket-mode.yaml": {"slack", "manifest", "--socket-mode"},
	} {
		out, err := command(t, nil, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		want, err := os.ReadFile(repoFile("deploy", "slack", file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("drbot %s differs from deploy/slack/%s", strings.Join(args, " "), file)
		}
	}
	out, err := command(t, nil, "slack", "manifest", "--url", "https://drbot.corp.example/").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"url: https://drbot.corp.example/slack/commands", "request_url: https://drbot.corp.example/slack/interactions", "request_url: https://drbot.corp.example/slack/events", "socket_mode_enabled: false"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("manifest --url lacks %q:\n%s", want, out)
		}
	}
	if out, err := command(t, nil, "slack", "manifest", "--url", "http://insecure.example").CombinedOutput(); err == nil || !strings.Contains(string(out), "https://") {
		t.Errorf("an http:// URL was accepted: %v\n%s", err, out)
	}
}
