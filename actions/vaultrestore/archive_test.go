package vaultrestore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/internal/fakevault"
)

func sum(b []byte, name string) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]) + "  " + name + "\n"
}

// CheckSnapshot accepts Vault's archive shape and refuses every way one can
// be damaged.
func TestCheckSnapshot(t *testing.T) {
	good := fakevault.Archive(42, map[string]int{"secret": 2}, map[string]map[string]string{"secret/prod/db": {"p": "1"}})
	in, err := vaultrestore.CheckSnapshot(bytes.NewReader(good))
	if err != nil || in.Index != 42 || in.Bytes != int64(len(good)) || len(in.Files) != 4 {
		t.Fatalf("good archive: %+v, %v", in, err)
	}
	meta, state := []byte(`{"ID":"x","Index":1}`), []byte("state")
	sums := []byte(sum(meta, "meta.json") + sum(state, "state.bin"))
	order := []string{"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"}
	build := func(edit func(files map[string][]byte) []string) []byte {
		files := map[string][]byte{"meta.json": meta, "state.bin": state, "SHA256SUMS": sums, "SHA256SUMS.sealed": []byte("sealed")}
		o := edit(files)
		if o == nil {
			o = order
		}
		return fakevault.Build(files, o...)
	}
	for name, tc := range map[string]struct {
		body []byte
		want string
	}{
		"not gzip":      {[]byte("plain"), "not a snapshot archive"},
		"truncated":     {good[:len(good)-30], "unexpected EOF"},
		"no sealed":     {build(func(map[string][]byte) []string { return order[:3] }), "no SHA256SUMS.sealed"},
		"empty sealed":  {build(func(f map[string][]byte) []string { f["SHA256SUMS.sealed"] = nil; return nil }), "no SHA256SUMS.sealed"},
		"state changed": {build(func(f map[string][]byte) []string { f["state.bin"] = []byte("evil!"); return nil }), "checksum mismatch for state.bin"},
		"extra file": {build(func(f map[string][]byte) []string {
			f["extra"] = []byte("x")
			return append([]string{"extra"}, order...)
		}), "extra, which SHA256SUMS does not list"},
		"no sums":      {build(func(map[string][]byte) []string { return []string{"meta.json", "state.bin", "SHA256SUMS.sealed"} }), "no SHA256SUMS"},
		"state absent": {build(func(map[string][]byte) []string { return []string{"meta.json", "SHA256SUMS", "SHA256SUMS.sealed"} }), "lists state.bin, which the archive lacks"},
	} {
		_, err := vaultrestore.CheckSnapshot(bytes.NewReader(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
