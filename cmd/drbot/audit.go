package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
)

// AuditCmd groups the audit subcommands.
type AuditCmd struct {
	Verify AuditVerifyCmd `cmd:"" help:"Check the whole audit hash chain; name the first broken row."`
	Export AuditExportCmd `cmd:"" help:"Print an incident's audit trail (requests, approvals, steps, verification) as Markdown or JSON."`
}

// AuditVerifyCmd verifies the audit chain.
type AuditVerifyCmd struct {
	StoreFlags
}

// Run verifies the chain and exits 1 when it is broken.
func (c AuditVerifyCmd) Run(ctx context.Context, logger *slog.Logger) error {
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	rep, err := db.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("verify audit chain: %w", err)
	}
	if !rep.OK() {
		fmt.Printf("audit chain BROKEN at row %d of %d: %s\n", rep.FirstBroken, rep.Rows, rep.Problem)
		return exitError{code: 1}
	}
	fmt.Printf("audit chain OK: %d rows verified\n", rep.Rows)
	return nil
}

// AuditExportCmd exports one incident's audit trail.
type AuditExportCmd struct {
	StoreFlags
	Incident int64  `help:"Incident id (drbot's number, as in the channel header)." required:""`
	Format   string `help:"Output format: markdown or json." enum:"markdown,json" default:"markdown"`
}

// Run prints the export to stdout. It exits 1 when the audit chain does not
// verify (the export is still printed, marked as such).
func (c AuditExportCmd) Run(ctx context.Context, logger *slog.Logger) error {
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	exp, err := incident.BuildAuditExport(ctx, db, c.Incident, time.Now())
	if err != nil {
		return err
	}
	switch c.Format {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(exp)
	default:
		err = incident.WriteAuditMarkdown(os.Stdout, exp)
	}
	if err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	if !exp.Chain.OK {
		return exitError{code: 1}
	}
	return nil
}
