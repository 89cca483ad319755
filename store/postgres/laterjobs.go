package postgres

import (
	"context"
	"fmt"
)

// LaterJobs counts the unfinished jobs (waiting or running) of kind for
// incident incidentID inserted after job afterID: a job that has a later
// twin can leave its work to it (the incident header's refreshes coalesce
// this way, without River's uniqueness, which would drop a refresh asked
// while one is running and has already read the state).
func (db *DB) LaterJobs(ctx context.Context, kind string, incidentID, afterID int64) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `
		SELECT count(*) FROM river_job
		WHERE kind = $1 AND args->>'incident_id' = $2 AND id > $3
		  AND state::text IN ('scheduled', 'available', 'retryable', 'pending', 'running')`,
		kind, fmt.Sprint(incidentID), afterID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count later %s jobs of incident %d: %w", kind, incidentID, err)
	}
	return n, nil
}
