package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/runbook"
)

// maxVaultBody bounds what is read of a Vault answer.
const maxVaultBody = 1 << 20

// vaultHealth is the part of GET /v1/sys/health drbot reads.
type vaultHealth struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Standby     bool   `json:"standby"`
	PerfStandby bool   `json:"performance_standby"`
	Version     string `json:"version"`
	ClusterName string `json:"cluster_name"`
}

// VaultHealth reads Vault's health (GET addr/v1/sys/health, as `vault
// status` does) and, when a token is given, whether Vault accepts it (GET
// /v1/auth/token/lookup-self). Status codes are Vault's: 200 active, 429
// unsealed standby, 472 DR secondary, 473 performance standby, 501 not
// initialized, 503 sealed. The token is sent in X-Vault-Token and never shown.
func VaultHealth(ctx context.Context, client *http.Client, svc runbook.Service, addr, token string) []actions.Finding {
	f := actions.Finding{Area: "vault", Name: "Vault health"}
	base, err := url.Parse(strings.TrimRight(addr, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		f.Status, f.Detail = actions.StatusFail, "the Vault address is not an http(s) URL"
		return []actions.Finding{f}
	}
	base.User, base.RawQuery, base.Fragment = nil, "", ""
	where := " at " + base.Host
	code, body, err := vaultGet(ctx, client, base.String()+"/v1/sys/health", token)
	if err != nil {
		f.Status, f.Detail, f.Remedy = actions.StatusFail, "no answer"+where+": "+err.Error(), secretRecovery(svc)
		return []actions.Finding{f}
	}
	var h vaultHealth
	parsed := json.Unmarshal(body, &h) == nil
	version := ""
	if parsed && h.Version != "" {
		version = ", version " + h.Version
	}
	switch code {
	case http.StatusOK:
		f.Status, f.Detail = actions.StatusOK, "initialized, unsealed, active"+version+where
	case http.StatusTooManyRequests:
		f.Status, f.Detail = actions.StatusOK, "initialized, unsealed, standby"+version+where
	case 472:
		f.Status, f.Detail = actions.StatusWarn, "a disaster-recovery secondary"+version+where
	case 473:
		f.Status, f.Detail = actions.StatusOK, "initialized, unsealed, performance standby"+version+where
	case http.StatusNotImplemented:
		f.Status, f.Detail, f.Remedy = actions.StatusFail, "not initialized"+version+where, secretRecovery(svc)
	case http.StatusServiceUnavailable:
		f.Status, f.Detail, f.Remedy = actions.StatusFail, "sealed"+version+where, vaultSealed(svc)
	default:
		f.Status, f.Detail, f.Remedy = actions.StatusFail, fmt.Sprintf("answered HTTP %d%s", code, where), secretRecovery(svc)
	}
	out := []actions.Finding{f}
	if token == "" || (code != http.StatusOK && code != http.StatusTooManyRequests && code != 473) {
		return out
	}
	t := actions.Finding{Area: "vault", Name: "Vault token"}
	code, body, err = vaultGet(ctx, client, base.String()+"/v1/auth/token/lookup-self", token)
	switch {
	case err != nil:
		t.Status, t.Detail = actions.StatusFail, "cannot look the token up: "+err.Error()
	case code == http.StatusOK:
		var ls struct {
			Data struct {
				TTL      int64    `json:"ttl"`
				Policies []string `json:"policies"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ls)
		t.Status, t.Detail = actions.StatusOK, "accepted"
		if len(ls.Data.Policies) > 0 {
			t.Detail += ", policies " + strings.Join(ls.Data.Policies, ", ")
		}
		if ls.Data.TTL > 0 {
			t.Detail += fmt.Sprintf(", expires in %s", actions.HumanAge(secondsDuration(ls.Data.TTL)))
		}
	case code == http.StatusForbidden || code == http.StatusUnauthorized:
		t.Status, t.Detail = actions.StatusFail, "rejected (expired, revoked or wrong)"
		env := "the Vault token's environment variable"
		if svc.Vault != nil && svc.Vault.TokenEnv != "" {
			env = svc.Vault.TokenEnv
		}
		t.Remedy = &actions.Remedy{Steps: []actions.RemedyStep{{Say: "Put a valid token into " + env + " (restore-vault needs one allowed to take and restore raft snapshots)"}}}
	default:
		t.Status, t.Detail = actions.StatusWarn, fmt.Sprintf("token lookup answered HTTP %d", code)
	}
	return append(out, t)
}

func vaultGet(ctx context.Context, client *http.Client, u, token string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("bad request")
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s", requestReason(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVaultBody))
	if err != nil {
		return 0, nil, fmt.Errorf("%s", requestReason(err))
	}
	return resp.StatusCode, body, nil
}
