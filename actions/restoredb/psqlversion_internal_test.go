package restoredb

import "testing"

func TestPsqlVersionHasRestrict(t *testing.T) {
	for _, c := range []struct {
		out  string
		want bool
	}{
		{"psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", true},
		{"psql (PostgreSQL) 15.14", true},
		{"psql (PostgreSQL) 15.13", false},
		{"psql (PostgreSQL) 13.22", true},
		{"psql (PostgreSQL) 14.18", false},
		{"psql (PostgreSQL) 16.10", true},
		{"psql (PostgreSQL) 17.5", false},
		{"psql (PostgreSQL) 17.6", true},
		{"psql (PostgreSQL) 18beta1", true},
		{"psql (PostgreSQL) 18.1", true},
		{"psql (PostgreSQL) 12.22", false},
	} {
		major, minor, err := parsePsqlVersion(c.out)
		if err != nil {
			t.Errorf("%q: %v", c.out, err)
			continue
		}
		if got := hasRestrict(major, minor); got != c.want {
			t.Errorf("%q (%d.%d): has \\restrict = %v, want %v", c.out, major, minor, got, c.want)
		}
	}
	if _, _, err := parsePsqlVersion("not psql"); err == nil {
		t.Error("garbage parsed")
	}
}
