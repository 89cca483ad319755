// Package examples embeds the example runbook configs so that the binary can run
// on its built-in defaults (`drbot shell` with no --config uses Demo).
package examples

import _ "embed"

// Demo is deploy/examples/demo.yaml: the local demo runbook.
//
//go:embed demo.yaml
var Demo []byte

// DemoName is the file name reported in validation messages about Demo.
const DemoName = "demo.yaml"

// Reference is deploy/examples/drbot.yaml: the reference runbook config.
//
//go:embed drbot.yaml
var Reference []byte
