package actiontest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestJournalWithRunStep(t *testing.T) {
	ctx := context.Background()
	j := actiontest.NewJournal()
	calls := 0
	step := func(ctx context.Context, resumed bool) (int, error) {
		calls++
		j.Progress(ctx, actions.Progress{Step: "count", Done: 1, Total: 2, Unit: "objects"})
		return 42, nil
	}
	v, err := actions.RunStep(ctx, j, "count", step)
	if err != nil || v != 42 {
		t.Fatalf("RunStep = %d, %v", v, err)
	}
	v, err = actions.RunStep(ctx, j, "count", step)
	if err != nil || v != 42 || calls != 1 {
		t.Fatalf("second RunStep = %d, %v after %d calls: a done step must return its recorded result", v, err, calls)
	}
	if got := strings.Join(j.Skipped(), ","); got != "count" {
		t.Fatalf("skipped %q", got)
	}
	boom := errors.New("boom")
	_, err = actions.RunStep(ctx, j, "fails", func(context.Context, bool) (int, error) { return 0, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var resumed bool
	_, _ = actions.RunStep(ctx, j, "fails", func(_ context.Context, r bool) (int, error) { resumed = r; return 1, nil })
	if !resumed {
		t.Fatal("a step that failed before must run as resumed")
	}
	if got := strings.Join(j.Failed(), ","); got != "fails" {
		t.Fatalf("failed %q", got)
	}
	if p, ok := j.LastProgress("count"); !ok || p.Done != 1 || p.Total != 2 {
		t.Fatalf("progress %+v", p)
	}
	j.Note(ctx, "hello")
	if got := j.Notes(); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("notes %v", got)
	}
	j.FailBeginOf("x", boom)
	if _, err := actions.RunStep(ctx, j, "x", step); !errors.Is(err, boom) {
		t.Fatalf("FailBeginOf: %v", err)
	}
}
