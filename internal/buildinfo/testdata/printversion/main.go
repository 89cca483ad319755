// Command printversion prints buildinfo.String(); TestLdflags builds it with -ldflags -X.
package main

import (
	"fmt"

	"github.com/drbot-dev/drbot/internal/buildinfo"
)

func main() { fmt.Print(buildinfo.String()) }
