package storage_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

func TestTopKeepsTheHighestWithinItsBound(t *testing.T) {
	top := storage.NewTop(5, func(a, b int) int { return a - b })
	r := rand.New(rand.NewPCG(1, 2))
	for _, x := range r.Perm(10_000) {
		top.Add(x)
	}
	if got := fmt.Sprint(top.Sorted()); got != "[9999 9998 9997 9996 9995]" {
		t.Fatalf("Sorted = %s", got)
	}
	if top.Added() != 10_000 || top.Peak() != 5 {
		t.Fatalf("added %d, peak %d", top.Added(), top.Peak())
	}
}

// TestFileNewestWalksWithoutTheWholeListing lists 3,000 files in nested
// folders (more than one ReadDir batch per folder): Newest agrees with the
// full sorted List, and Walk gives each folder's files one after another.
func TestFileNewestWalksWithoutTheWholeListing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	for i, m := range r.Perm(3000) {
		p := filepath.Join(dir, fmt.Sprintf("run-%d", i%3), "checkpoints", fmt.Sprintf("f-%04d.pt", i))
		if i%3 == 0 {
			p = filepath.Join(dir, fmt.Sprintf("top-%04d.dump", i))
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration(m) * time.Minute)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".partial.tmp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	loc, _ := runbook.ParseLocation("file://" + dir + "/")
	st, err := storage.New(ctx, loc, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	top, n, err := storage.Newest(ctx, st, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3000 || len(all) != 3000 || len(top) != 10 {
		t.Fatalf("Newest: %d of %d; List: %d", len(top), n, len(all))
	}
	for i := range top {
		if top[i] != all[i] {
			t.Fatalf("Newest[%d] = %s, List[%d] = %s", i, top[i].Name, i, all[i].Name)
		}
	}
	dumps, n, err := storage.Newest(ctx, st, 3, func(o storage.Object) bool { return strings.HasSuffix(o.Name, ".dump") })
	if err != nil || n != 1000 || len(dumps) != 3 || !strings.HasPrefix(dumps[0].Name, "top-") {
		t.Fatalf("Newest(.dump) = %v, %d, %v", dumps, n, err)
	}

	// Each top-level folder's objects come together.
	done := map[string]bool{}
	cur := ""
	if err := st.Walk(ctx, func(o storage.Object) error {
		first, _, _ := strings.Cut(o.Name, "/")
		if first != cur {
			if done[first] {
				return fmt.Errorf("%s seen again after leaving it", first)
			}
			done[cur], cur = true, first
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// fn's error stops the walk and comes back as is.
	stop := errors.New("enough")
	seen := 0
	if err := st.Walk(ctx, func(storage.Object) error { seen++; return stop }); !errors.Is(err, stop) || seen != 1 {
		t.Fatalf("Walk = %v after %d objects, want %v after 1", err, seen, stop)
	}
}
