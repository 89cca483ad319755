// Package runnertest holds a real recovery action for tests of the request
// engine: it "restores" from rows of a backups table in a real PostgreSQL
// database and records every execution in an executions table, so tests can
// count executions where they happen instead of asserting on mocks.
package runnertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drbot-dev/drbot/actions"
)

// Action is an actions.Action over a PostgreSQL database:
//   - Plan pins the newest row of backups (a refusal when there is none);
//   - Execute checks the pinned backup still exists (a refusal naming it when
//     it is gone), creates the table restored_<service>, and inserts one row
//     per execution into executions, reporting progress;
//   - Verify counts the executions of the pinned backup.
type Action struct {
	KindName string
	Pool     *pgxpool.Pool

	mu   sync.Mutex
	gate chan struct{} // when set, the record step waits for it (or ctx)
	// entered is closed when the record step starts waiting at the gate.
	entered chan struct{}

	plans       int           // Plan calls so far
	planAfter   int           // Plan calls past this many wait at planGate
	planGate    chan struct{} // when set, see planAfter
	planEntered chan struct{}
}

var _ actions.Action = (*Action)(nil)

// New connects to url and creates the tables.
func New(ctx context.Context, kind, url string) (*Action, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("runnertest: connect: %w", err)
	}
	_, err = pool.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS backups (name text PRIMARY KEY, created timestamptz NOT NULL DEFAULT clock_timestamp());
		CREATE TABLE IF NOT EXISTS executions (id bigserial PRIMARY KEY, kind text NOT NULL, service text NOT NULL, backup text NOT NULL,
		                                       at timestamptz NOT NULL DEFAULT clock_timestamp())`)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("runnertest: create tables: %w", err)
	}
	return &Action{KindName: kind, Pool: pool}, nil
}

// Close closes the pool.
func (a *Action) Close() { a.Pool.Close() }

// AddBackup adds a backup row; the newest added is what Plan pins.
func (a *Action) AddBackup(ctx context.Context, name string) error {
	_, err := a.Pool.Exec(ctx, "INSERT INTO backups (name) VALUES ($1)", name)
	return err
}

// DeleteBackup removes a backup row.
func (a *Action) DeleteBackup(ctx context.Context, name string) error {
	_, err := a.Pool.Exec(ctx, "DELETE FROM backups WHERE name = $1", name)
	return err
}

// Executions returns the backups executed, in order, for kind.
func (a *Action) Executions(ctx context.Context) ([]string, error) {
	rows, err := a.Pool.Query(ctx, "SELECT backup FROM executions WHERE kind = $1 ORDER BY id", a.KindName)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Hold makes the next executions wait in their record step until Release (or
// until their context ends); the returned channel is closed once one waits.
func (a *Action) Hold() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gate = make(chan struct{})
	a.entered = make(chan struct{})
	return a.entered
}

// HoldPlanAfter makes Plan calls after the first n wait (for ctx) until
// Release: with n = 1 the plan of the command runs and the runner's re-plan,
// between approval and running, is held. The channel is closed once one waits.
func (a *Action) HoldPlanAfter(n int) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.planAfter = n
	a.planGate = make(chan struct{})
	a.planEntered = make(chan struct{})
	return a.planEntered
}

// Release lets held executions continue.
func (a *Action) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gate != nil {
		close(a.gate)
		a.gate = nil
	}
	if a.planGate != nil {
		close(a.planGate)
		a.planGate = nil
	}
}

// Kind implements actions.Action.
func (a *Action) Kind() string { return a.KindName }

// Command implements actions.Action: an approval-gated command named KindName.
func (a *Action) Command() actions.Command {
	return actions.Command{Name: a.KindName, Summary: "Test restore of " + a.KindName, Approval: true}
}

type spec struct {
	Backup string `json:"backup"`
}

// Plan implements actions.Action.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	a.mu.Lock()
	a.plans++
	gate, entered := a.planGate, a.planEntered
	if a.plans <= a.planAfter {
		gate = nil
	}
	if gate != nil {
		select {
		case <-entered:
		default:
			close(entered)
		}
	}
	a.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return actions.Plan{}, ctx.Err()
		}
	}
	var name string
	err := a.Pool.QueryRow(ctx, "SELECT name FROM backups ORDER BY created DESC, name DESC LIMIT 1").Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return actions.Plan{}, actions.Refusef("%s has no backups", p.Service)
	}
	if err != nil {
		return actions.Plan{}, fmt.Errorf("newest backup: %w", err)
	}
	raw, err := json.Marshal(spec{Backup: name})
	if err != nil {
		return actions.Plan{}, err
	}
	return actions.Plan{
		Kind: a.KindName, Service: p.Service, Target: "test:" + a.KindName + ":" + p.Service,
		Summary: fmt.Sprintf("Restore %s from %s", p.Service, name),
		Steps: []actions.Step{
			{Name: "check", Description: "Check backup " + name + " exists"},
			{Name: "create", Description: "Create the restored table"},
			{Name: "record", Description: "Record the execution"},
		},
		Facts: []actions.Fact{{Label: "Backup", Value: name}},
		Spec:  raw,
	}, nil
}

// Execute implements actions.Action.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	var s spec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	if _, err := actions.RunStep(ctx, j, "check", func(ctx context.Context, _ bool) (bool, error) {
		var ok bool
		if err := a.Pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM backups WHERE name = $1)", s.Backup).Scan(&ok); err != nil {
			return false, err
		}
		if !ok {
			return false, actions.Refusef("the approved backup %s is gone; nothing was restored", s.Backup)
		}
		return true, nil
	}); err != nil {
		return err
	}
	table := pgx.Identifier{"restored_" + sanitize(plan.Service)}.Sanitize()
	if _, err := actions.RunStep(ctx, j, "create", func(ctx context.Context, _ bool) (string, error) {
		_, err := a.Pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (backup text)")
		return table, err
	}); err != nil {
		return err
	}
	_, err := actions.RunStep(ctx, j, "record", func(ctx context.Context, resumed bool) (int64, error) {
		a.mu.Lock()
		gate, entered := a.gate, a.entered
		a.mu.Unlock()
		for i := int64(1); i <= 3; i++ {
			j.Progress(ctx, actions.Progress{Step: "record", Done: i, Total: 3, Unit: "objects"})
		}
		if gate != nil {
			select {
			case <-entered:
			default:
				close(entered)
			}
			select {
			case <-gate:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		var id int64
		err := a.Pool.QueryRow(ctx, "INSERT INTO executions (kind, service, backup) VALUES ($1, $2, $3) RETURNING id",
			a.KindName, plan.Service, s.Backup).Scan(&id)
		return id, err
	})
	return err
}

// Verify implements actions.Action.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	var s spec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return actions.Report{}, err
	}
	var n int64
	if err := a.Pool.QueryRow(ctx, "SELECT count(*) FROM executions WHERE kind = $1 AND backup = $2", a.KindName, s.Backup).Scan(&n); err != nil {
		return actions.Report{}, err
	}
	return actions.Report{Checks: []actions.CheckResult{{
		Name: "restored", Kind: "sql", Target: "executions", Expected: "1", Observed: strconv.FormatInt(n, 10), OK: n == 1,
	}}}, nil
}

func sanitize(s string) string {
	out := []rune{}
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			out = append(out, r)
		} else {
			out = append(out, '_')
		}
	}
	return string(out)
}
