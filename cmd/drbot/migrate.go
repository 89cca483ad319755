package main

import (
	"context"
	"fmt"
	"log/slog"
)

// MigrateCmd applies the store's migrations (drbot's own and River's) and exits.
type MigrateCmd struct {
	StoreFlags
}

// Run opens the store, which migrates it under an advisory lock.
func (c MigrateCmd) Run(ctx context.Context, logger *slog.Logger) error {
	_, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	fmt.Println("migrations applied")
	return nil
}
