package main

import (
	"fmt"

	"github.com/drbot-dev/drbot/internal/buildinfo"
)

// VersionCmd prints build information.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run() error {
	fmt.Println(buildinfo.String())
	return nil
}
