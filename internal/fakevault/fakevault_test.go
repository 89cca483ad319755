package fakevault_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/drbot-dev/drbot/internal/fakevault"
)

func client(t *testing.T, s *fakevault.Server, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = s.URL()
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func status(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// The real client takes a snapshot, the fake installs it back, and listing
// follows what was restored; a wrong token is refused.
func TestSnapshotRoundTripWithTheRealClient(t *testing.T) {
	s := fakevault.New()
	defer s.Close()
	ctx := context.Background()
	s.Put("secret/prod/db", map[string]string{"password": "p1"})
	s.Put("secret/prod/api/key", map[string]string{"k": "v"})
	c := client(t, s, s.Token())

	var snap bytes.Buffer
	if err := c.Sys().RaftSnapshotWithContext(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Logical().ListWithContext(ctx, "secret/metadata/prod")
	if err != nil || sec == nil {
		t.Fatalf("list: %v %v", sec, err)
	}
	if keys := sec.Data["keys"].([]any); len(keys) != 2 || keys[0] != "api/" || keys[1] != "db" {
		t.Fatalf("keys %v", keys)
	}
	s.Delete("secret/prod")
	if sec, err := c.Logical().ListWithContext(ctx, "secret/metadata/prod"); err != nil || sec != nil {
		t.Fatalf("empty path listed %v, %v (the client maps 404 to nil)", sec, err)
	}
	if err := c.Sys().RaftSnapshotRestoreWithContext(ctx, bytes.NewReader(snap.Bytes()), true); err != nil {
		t.Fatal(err)
	}
	if got := s.Secrets()["secret/prod/db"]["password"]; got != "p1" || s.Restores() != 1 {
		t.Fatalf("after restore: %q, %d restores", got, s.Restores())
	}

	bad := client(t, s, "wrong")
	err = bad.Sys().RaftSnapshotRestoreWithContext(ctx, bytes.NewReader(snap.Bytes()), true)
	if status(err) != http.StatusForbidden || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("wrong token: %v", err)
	}
	if s.Restores() != 1 {
		t.Fatal("a refused restore installed")
	}
}

// A corrupt archive is refused with Vault's error shape and changes nothing.
func TestRestoreRefusesCorruptArchives(t *testing.T) {
	s := fakevault.New()
	defer s.Close()
	s.Put("secret/prod/db", map[string]string{"password": "p1"})
	c := client(t, s, s.Token())
	good := s.Snapshot()
	for name, body := range map[string][]byte{
		"not gzip":  []byte("hello"),
		"truncated": good[:len(good)/2],
		"tampered": fakevault.Build(map[string][]byte{
			"meta.json": []byte(`{}`), "state.bin": []byte(`{"secrets":{}}`),
			"SHA256SUMS": []byte("0000  meta.json\n"), "SHA256SUMS.sealed": []byte("x"),
		}, "meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"),
	} {
		err := c.Sys().RaftSnapshotRestoreWithContext(context.Background(), bytes.NewReader(body), true)
		if status(err) != http.StatusInternalServerError || !strings.Contains(err.Error(), "snapshot") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if s.Restores() != 0 || s.Secrets()["secret/prod/db"]["password"] != "p1" {
		t.Fatal("a corrupt archive changed the state")
	}
}

// Health answers with Vault's codes; the client's *code parameters override them.
func TestHealthCodes(t *testing.T) {
	s := fakevault.New()
	defer s.Close()
	get := func() int {
		resp, err := http.Get(s.URL() + "/v1/sys/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var got []int
	got = append(got, get())
	s.SetStandby(true)
	got = append(got, get())
	s.Seal()
	got = append(got, get())
	s.SetInitialized(false)
	got = append(got, get())
	if want := []int{200, 429, 503, 501}; !slices.Equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	h, err := client(t, s, "").Sys().Health()
	if err != nil || h.Initialized || !h.Sealed {
		t.Fatalf("client health %+v, %v", h, err)
	}
	s.SetInitialized(true)
	if _, err := client(t, s, s.Token()).Logical().List("secret/metadata/prod"); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("sealed list: %v", err)
	}
}
