package main

import (
	"context"
	"fmt"
	"log/slog"
)

// AuditCmd groups the audit subcommands.
type AuditCmd struct {
	Verify AuditVerifyCmd `cmd:"" help:"Check the whole audit hash chain; name the first broken row."`
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
