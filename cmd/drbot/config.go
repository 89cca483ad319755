package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/drbot-dev/drbot/runbook"
)

// ConfigCmd groups the config subcommands.
type ConfigCmd struct {
	Validate ConfigValidateCmd `cmd:"" help:"Check runbook config files; print every problem with file:line and key path."`
	Schema   ConfigSchemaCmd   `cmd:"" help:"Print the runbook config's JSON Schema (deploy/schema/drbot.schema.json), for editors."`
	Docs     ConfigDocsCmd     `cmd:"" help:"Print the runbook config reference in Markdown (docs/config.md)."`
}

// ConfigSchemaCmd prints the JSON Schema generated from the config types.
type ConfigSchemaCmd struct{}

// Run prints the schema.
func (ConfigSchemaCmd) Run() error {
	_, err := os.Stdout.Write(runbook.Schema())
	return err
}

// ConfigDocsCmd prints the config reference generated from the config types.
type ConfigDocsCmd struct{}

// Run prints the reference.
func (ConfigDocsCmd) Run() error {
	_, err := os.Stdout.Write(runbook.Docs())
	return err
}

// ConfigValidateCmd validates runbook files.
type ConfigValidateCmd struct {
	Files []string `arg:"" name:"file" help:"Runbook config files to check." type:"path"`
}

// Run validates each file and exits 1 when any has problems.
func (c ConfigValidateCmd) Run() error {
	bad := false
	for _, f := range c.Files {
		cfg, err := runbook.Load(f)
		var verr *runbook.ValidationError
		switch {
		case errors.As(err, &verr):
			bad = true
			fmt.Fprintln(os.Stderr, verr.Error())
		case err != nil:
			bad = true
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
		default:
			fmt.Printf("%s: OK (%d services: %s)\n", f, len(cfg.Services), strings.Join(cfg.ServiceNames(), ", "))
		}
	}
	if bad {
		return exitError{code: 1}
	}
	return nil
}
