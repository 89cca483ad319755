package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Vault snapshots on S3 (moto): a stale one is announced once across checks
// and restarts, its age exported as drbot_backup_age_seconds{kind="vault"};
// a pre-restore snapshot written later does not count as a recovery; a new
// snapshot does, once.
func TestBackupsCheckVaultSnapshotsOnS3(t *testing.T) {
	w := newBackupsWorld(t)
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
	put := func(key string) {
		t.Helper()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inflow-vault-backups"), Key: aws.String(key), Body: bytes.NewReader([]byte("snap"))}); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg, err = runbook.Parse("vault-backups.yaml", []byte(`
slack:
  announce_channel: CANNOUNCE
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: s3://inflow-vault-backups/raft/
      every: 24h
      verify: [secret/prod]
`))
	if err != nil {
		t.Fatal(err)
	}
	put("raft/vault-20261130.snap")
	w.now = time.Now().Add(30 * time.Hour) // the snapshot is 30h old by the job's clock
	watch := func() *backupWatch {
		bw := w.watch()
		bw.open = func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{S3: client})
		}
		return bw
	}
	bw := watch()
	for range 3 {
		w.check(t, bw)
		w.now = w.now.Add(time.Minute)
	}
	w.check(t, watch()) // a restart
	got := w.announcements(t)
	if len(got) != 1 || !strings.Contains(got[0], "inflow Vault snapshots are stale: the newest backup, vault-20261130.snap, is 30h") ||
		!strings.Contains(got[0], "expected every 24h") || !strings.Contains(got[0], "s3://inflow-vault-backups/raft/") {
		t.Fatalf("announcements %q, want one naming the Vault snapshots", got)
	}
	if age := gauge(t, bw, "inflow", "vault", "vault"); age < (30 * time.Hour).Seconds() {
		t.Errorf("drbot_backup_age_seconds{kind=vault} = %v, want at least 30h", age)
	}

	// restore-vault's pre-restore snapshot is not a backup: still stale.
	put("raft/pre-restore-20261201120000.snap")
	w.check(t, watch())
	if got := w.announcements(t); len(got) != 1 {
		t.Fatalf("a pre-restore snapshot counted as a recovery: %q", got)
	}
	if k := w.auditKinds(t); k[store.AuditBackupStale] != 1 || k[store.AuditBackupRecovered] != 0 {
		t.Fatalf("audit %v", k)
	}
	// A real snapshot: recovered, once.
	w.now = time.Now()
	put("raft/vault-20261201.snap")
	w.check(t, watch())
	w.check(t, watch())
	if got := w.announcements(t); len(got) != 2 || !strings.Contains(got[1], "inflow Vault snapshots have recovered") || !strings.Contains(got[1], "vault-20261201.snap") {
		t.Fatalf("announcements after a new snapshot %q", got)
	}
}
