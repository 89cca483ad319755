package main

import (
	"bytes"
	"os"
	"testing"
)

// TestConfigSchemaAndDocsCommands: `drbot config schema` and `drbot config
// docs` print the files the repository keeps (deploy/schema, docs/config.md).
func TestConfigSchemaAndDocsCommands(t *testing.T) {
	for sub, file := range map[string][]string{
		"schema": {"deploy", "schema", "drbot.schema.json"},
		"docs":   {"docs", "config.md"},
	} {
		out, err := command(t, nil, "config", sub).Output()
		if err != nil {
			t.Fatalf("config %s: %v", sub, err)
		}
		want, err := os.ReadFile(repoFile(file...))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("drbot config %s differs from %v", sub, file)
		}
	}
}
