package runbook

import (
	"fmt"
	"strings"
)

// Vault is a HashiCorp Vault cluster with integrated (raft) storage whose
// snapshots can be restored (runbook 000 "Secret Recovery": vault operator
// raft snapshot restore).
type Vault struct {
	AddressEnv string   // the environment variable holding Vault's address, e.g. VAULT_ADDR
	TokenEnv   string   // the environment variable holding a Vault token allowed to take and restore snapshots
	Snapshots  Location // where the raft snapshots are, e.g. s3://bucket/raft/
	Every      Duration // expected interval between snapshots; zero when not set
	// Verify lists KV paths that must list keys after a restore, e.g.
	// secret/prod (vault kv list secret/prod).
	Verify []string
}

func (d *decoder) vault(f *fields) *Vault {
	if f == nil {
		return nil
	}
	v := &Vault{}
	envName := func(what string) func(string) error {
		return func(s string) error {
			if !envNameRE.MatchString(s) {
				return fmt.Errorf("%s is not an environment variable name (name the variable holding %s; never put the value here)", fmtQuote(s), what)
			}
			return nil
		}
	}
	if f.has("address_env") {
		v.AddressEnv, _ = f.check("address_env", envName("Vault's address"))
	} else {
		f.missing("address_env", "the environment variable holding Vault's address, e.g. VAULT_ADDR")
	}
	if f.has("token_env") {
		v.TokenEnv, _ = f.check("token_env", envName("a Vault token"))
	} else {
		f.missing("token_env", "the environment variable holding a Vault token, e.g. VAULT_TOKEN")
	}
	if f.has("snapshots") {
		v.Snapshots, _ = f.location("snapshots")
	} else {
		f.missing("snapshots", "where the raft snapshots are, e.g. s3://bucket/raft/")
	}
	v.Every = f.duration("every")
	v.Verify = f.strings("verify", func(s string) error {
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "/") || strings.Contains(s, "..") {
			return fmt.Errorf("%s is not a KV path (want a mount and path such as secret/prod)", fmtQuote(s))
		}
		return nil
	})
	return v
}
