// Package archtest checks the import table of ../shared/DESIGN.md
// ("Packages") with `go list`, independently of golangci-lint's depguard
// rules in .golangci.yml, which encode the same table. Its tests are all
// there is: see archtest_test.go for the rules and the temporary exceptions.
package archtest
