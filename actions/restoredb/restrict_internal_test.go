package restoredb

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRestrictReader(t *testing.T) {
	const key = "OURkey123"
	long := strings.Repeat("x", 200<<10) // a COPY row longer than the buffer
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"pg_dump pair blanked",
			"--\n\\restrict Abc9\n\nSET x = 1;\nCOPY t FROM stdin;\n\\N\t\\\\restrict Abc9\n\\.\n\n\\unrestrict Abc9\n",
			"--\n\n\nSET x = 1;\nCOPY t FROM stdin;\n\\N\t\\\\restrict Abc9\n\\.\n\n\n"},
		{"crlf pair", "\\restrict K\r\nSELECT 1;\r\n\\unrestrict K\r\n", "\nSELECT 1;\r\n\n"},
		{"no trailing newline", "\\restrict K\nSELECT 1;\n\\unrestrict K", "\nSELECT 1;\n"},
		{"second restrict reaches psql", "\\restrict A\n\\restrict B\n\\unrestrict B\n\\unrestrict A\n", "\n\\restrict B\n\\unrestrict B\n\n"},
		{"unrestrict of another key reaches psql", "\\restrict A\n\\unrestrict Z\n", "\n\\unrestrict Z\n"},
		{"unrestrict without restrict reaches psql", "\\unrestrict A\n", "\\unrestrict A\n"},
		{"not at column 0", " \\restrict A\nSELECT 1; \\unrestrict A\n", " \\restrict A\nSELECT 1; \\unrestrict A\n"},
		{"key of other characters", "\\restrict a-b\n", "\\restrict a-b\n"},
		{"long lines pass whole", long + "\n\\restrict K\n" + long, long + "\n\n" + long},
	} {
		for name, r := range map[string]io.Reader{"whole": strings.NewReader(tc.in), "bytewise": iotest.OneByteReader(strings.NewReader(tc.in))} {
			got, err := io.ReadAll(newRestrictReader(r, key))
			want := "\\restrict " + key + "\n" + tc.want
			if err != nil || string(got) != want {
				g, w := string(got), want
				if len(g) > 200 {
					g, w = g[:100]+"…", w[:min(100, len(w))]+"…"
				}
				t.Errorf("%s %s: got %q, %v; want %q", tc.name, name, g, err, w)
			}
		}
	}
	// A read error passes through.
	boom := errors.New("boom")
	if _, err := io.ReadAll(newRestrictReader(iotest.ErrReader(boom), key)); !errors.Is(err, boom) {
		t.Errorf("read error = %v, want boom", err)
	}
}

func TestRestrictKeysAreFreshAlphanumeric(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := restrictKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) < 32 || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" || seen[k] {
			t.Fatalf("key %q", k)
		}
		seen[k] = true
	}
}

func TestPsqlRestrictOK(t *testing.T) {
	for out, want := range map[string]bool{
		"psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": true,
		"psql (PostgreSQL) 15.14\n":                          true,
		"psql (PostgreSQL) 15.13\n":                          false,
		"psql (PostgreSQL) 16.9\n":                           false,
		"psql (PostgreSQL) 16.10\n":                          true,
		"psql (PostgreSQL) 17.5\n":                           false,
		"psql (PostgreSQL) 17.6\n":                           true,
		"psql (PostgreSQL) 14.19\n":                          true,
		"psql (PostgreSQL) 14.18\n":                          false,
		"psql (PostgreSQL) 13.22\n":                          true,
		"psql (PostgreSQL) 12.22\n":                          false,
		"psql (PostgreSQL) 9.6.24\n":                         false,
		"psql (PostgreSQL) 18.0\n":                           true,
		"psql (PostgreSQL) 18beta3\n":                        true,
		"psql (PostgreSQL) 19devel\n":                        true,
		"something else entirely\n":                          false,
	} {
		if got, version := psqlRestrictOK(out); got != want || version == "" {
			t.Errorf("psqlRestrictOK(%q) = %v, %q; want %v", out, got, version, want)
		}
	}
	if _, v := psqlRestrictOK("psql (PostgreSQL) 15.13\n"); v != "15.13" {
		t.Errorf("version = %q, want 15.13", v)
	}
}

func TestRefusedMeta(t *testing.T) {
	err := refusedMeta("psql:<stdin>:42: error: backslash commands are restricted; only \\unrestrict is allowed")
	if !errors.Is(err, errMetaCommand) || !strings.Contains(err.Error(), "at line 41") {
		t.Errorf("refusedMeta = %v", err)
	}
	if err := refusedMeta("psql:<stdin>:3: error: \\unrestrict: wrong key"); !errors.Is(err, errMetaCommand) {
		t.Errorf("wrong key: %v", err)
	}
	if err := refusedMeta("psql:<stdin>:3: ERROR:  relation \"nope\" does not exist"); err != nil {
		t.Errorf("an SQL error is not a refused meta-command: %v", err)
	}
}
