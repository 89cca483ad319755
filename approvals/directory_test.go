package approvals

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestResolverResolvesIDsGroupsAndEmails(t *testing.T) {
	lookups := 0
	dir := Directory{
		LookupByEmail: func(_ context.Context, email string) (string, error) {
			lookups++
			switch email {
			case "dba@example.com":
				return "UDBA", nil
			case "gone@example.com":
				return "", nil
			}
			return "", errors.New("slack down")
		},
		GroupMembers: func(_ context.Context, group string) ([]string, error) {
			if group == "SPLATFORM" {
				return []string{"UP1", "UP2"}, nil
			}
			return nil, errors.New("no such group")
		},
	}
	now := time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := NewResolver(dir, time.Minute, clock, nil)
	set, err := r.Resolve(context.Background(), []string{"U0LEAD", "SPLATFORM", "dba@example.com", "gone@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := set.IDs(), []string{"U0LEAD", "UDBA", "UP1", "UP2"}; !slices.Equal(got, want) {
		t.Errorf("approvers = %v, want %v", got, want)
	}
	if _, err := r.Resolve(context.Background(), []string{"U0LEAD", "SPLATFORM", "dba@example.com", "gone@example.com"}); err != nil || lookups != 2 {
		t.Errorf("second resolve within the TTL looked up again (%d lookups, err %v)", lookups, err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := r.Resolve(context.Background(), []string{"U0LEAD", "dba@example.com"}); err != nil || lookups != 3 {
		t.Errorf("resolve after the TTL did not look up again (%d lookups, err %v)", lookups, err)
	}
	if _, err := r.Resolve(context.Background(), []string{"x@example.com"}); err == nil {
		t.Error("a failing directory did not fail the resolve")
	}

	// Without a group directory (the shell), groups resolve to nobody.
	r2 := NewResolver(Directory{}, 0, clock, nil)
	set, err = r2.Resolve(context.Background(), []string{"SPLATFORM", "bob"})
	if err != nil || !set.Has("bob") || set.Has("SPLATFORM") || len(set) != 1 {
		t.Errorf("resolve without directory = %v, %v", set, err)
	}
}

// TestResolverCachesEachList: approvers, requesters and responders share one
// resolver; resolving one list must not evict another's cached set.
func TestResolverCachesEachList(t *testing.T) {
	lookups := 0
	dir := Directory{GroupMembers: func(_ context.Context, group string) ([]string, error) {
		lookups++
		return []string{"U" + group[1:]}, nil
	}}
	now := time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	r := NewResolver(dir, time.Minute, func() time.Time { return now }, nil)
	for range 3 {
		for _, list := range [][]string{{"SA"}, {"SB"}, {"SC", "U1"}} {
			if _, err := r.Resolve(context.Background(), list); err != nil {
				t.Fatal(err)
			}
		}
	}
	if lookups != 3 {
		t.Errorf("three lists resolved three times each made %d group lookups, want 3", lookups)
	}
}
