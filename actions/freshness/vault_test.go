package freshness

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Vault snapshots in S3 (moto) are checked against vault.every; the
// pre-restore snapshots restore-vault saves do not count as backups.
func TestVaultSnapshotsOnS3(t *testing.T) {
	ctx := context.Background()
	endpoint := testenv.Moto(t)
	acfg, err := awsconf.Load(ctx, "", awsconf.Static(endpoint, "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	client := awsconf.S3(acfg)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("inflow-vault-backups")}); err != nil {
		t.Fatal(err)
	}
	cfg, err := runbook.Parse("v.yaml", []byte(`
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: s3://inflow-vault-backups/raft/
      every: 8m
      verify: [secret/prod]
  - name: quiet
    pagerduty:
      service_ids: [PQUIET]
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: s3://inflow-vault-backups/quiet/
`))
	if err != nil {
		t.Fatal(err)
	}
	locs := Locations(cfg)
	if len(locs) != 1 || locs[0].Kind != KindVault || locs[0].Name != "vault" || locs[0].Every != 8*time.Minute {
		t.Fatalf("locations %+v (a vault without every is not checked)", locs)
	}
	if iv := Interval(cfg); iv != 2*time.Minute {
		t.Fatalf("interval %s, want every/4", iv)
	}
	open := func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
		return storage.New(ctx, loc, storage.Options{S3: client})
	}
	put := func(key string) {
		t.Helper()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inflow-vault-backups"), Key: aws.String(key), Body: bytes.NewReader([]byte("snap"))}); err != nil {
			t.Fatal(err)
		}
	}

	// Only a pre-restore snapshot: no backup, stale.
	put("raft/pre-restore-20261201120000.snap")
	st := Check(ctx, cfg, open, time.Now())
	if len(st) != 1 || st[0].Err != nil || !st[0].Stale || st[0].NewestKey != "" {
		t.Fatalf("only a pre-restore snapshot: %+v", st)
	}
	put("raft/vault-20261201.snap")
	time.Sleep(1100 * time.Millisecond)
	put("raft/pre-restore-20261201130000.snap") // newer, and still not a backup
	now := time.Now()
	st = Check(ctx, cfg, open, now)
	if st[0].Err != nil || st[0].Stale || st[0].NewestKey != "vault-20261201.snap" {
		t.Fatalf("fresh: %+v", st[0])
	}
	st = Check(ctx, cfg, open, now.Add(9*time.Minute))
	if !st[0].Stale || st[0].NewestKey != "vault-20261201.snap" {
		t.Fatalf("9m later with every 8m: %+v", st[0])
	}
}
