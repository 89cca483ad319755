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
