package backups_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func loc(t *testing.T, s string) runbook.Location {
	t.Helper()
	l, err := runbook.ParseLocation(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func text(m chat.Message) string {
	var b strings.Builder
	for _, bl := range m.Blocks {
		switch x := bl.(type) {
		case chat.Header:
			b.WriteString(x.Text + "\n")
		case chat.Text:
			b.WriteString(x.Text + "\n")
		}
	}
	return b.String()
}

func TestS3DatabaseAndModelBackups(t *testing.T) {
	ctx := context.Background()
	cfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(testenv.Moto(t), "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	c := awsconf.S3(cfg)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lstm-pfd-backups")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, size int) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lstm-pfd-backups"), Key: aws.String(key),
			Body: strings.NewReader(strings.Repeat("x", size))}); err != nil {
			t.Fatal(err)
		}
	}
	put("db/backup-2026-11-22.sql.gz", 2048)
	time.Sleep(1100 * time.Millisecond)
	put("db/backup-2026-11-23.dump", 3<<20)
	put("models/models-20260115-020000/checkpoints/a.pt", 1024)
	put("models/models-20260115-020000/checkpoints/b.pt", 1024)
	put("models/latest.txt", 10)

	rb := &runbook.Config{Services: []runbook.Service{{
		Name:       "lstm-pfd",
		Objectives: runbook.Objectives{RPO: runbook.Duration{Duration: 4 * time.Hour}},
		Databases: []runbook.Database{{Name: "lstm_pfd", URLEnv: "X",
			Backups: &runbook.Backups{Location: loc(t, "s3://lstm-pfd-backups/db/")}}},
		Models: &runbook.Models{Backups: loc(t, "s3://lstm-pfd-backups/models/"), Target: loc(t, "s3://lstm-pfd-models/")},
	}}}
	open := func(ctx context.Context, l runbook.Location) (storage.Store, error) {
		return storage.New(ctx, l, storage.Options{S3: c})
	}
	now := time.Now().Add(3*time.Hour + 12*time.Minute)

	ls, err := backups.List(ctx, rb, "lstm-pfd", "", open, now)
	if err != nil {
		t.Fatal(err)
	}
	m := commands.BackupsMessage("lstm-pfd", ls) // the /dr backups answer
	got := text(m)
	for _, want := range []string{
		"Backups of lstm-pfd", "*lstm_pfd (database)* — s3://lstm-pfd-backups/db/",
		"`backup-2026-11-23.dump` — 3.0 MiB — 3h12m old", "`backup-2026-11-22.sql.gz` — 2.0 KiB",
		"RPO 4h: newest backup 3h12m old, OK",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("db listing lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "2026-11-23") > strings.Index(got, "2026-11-22") {
		t.Errorf("not newest first:\n%s", got)
	}

	ls, err = backups.List(ctx, rb, "lstm-pfd", "models", open, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || len(ls[0].Rows) != 2 {
		t.Fatalf("models listing = %+v", ls)
	}
	var grouped backups.Row
	for _, r := range ls[0].Rows {
		if r.Name == "models-20260115-020000/" {
			grouped = r
		}
	}
	if grouped.Objects != 2 || grouped.Size != 2048 {
		t.Errorf("model backup prefix row = %+v, want 2 objects, 2048 bytes", grouped)
	}
	if ls[0].OK || !strings.Contains(ls[0].Verdict, "NOT OK") || !strings.Contains(ls[0].Verdict, "5h12m old") {
		t.Errorf("verdict 5h12m after the backup with RPO 4h = %q (ok %v)", ls[0].Verdict, ls[0].OK)
	}

	_, err = backups.List(ctx, rb, "lstm-pfd", "logs", open, now)
	var ref *actions.Refusal
	if err == nil || !errorsAs(err, &ref) {
		t.Errorf("List(logs) = %v, want a refusal", err)
	}
}

func errorsAs(err error, r **actions.Refusal) bool { return errors.As(err, r) }

func TestFileBackupsEmptyAndMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rb := &runbook.Config{Services: []runbook.Service{{
		Name: "demo", Objectives: runbook.Objectives{RPO: runbook.Duration{Duration: time.Hour}},
		Databases: []runbook.Database{{Name: "demo", URLEnv: "X", Backups: &runbook.Backups{Location: loc(t, "file://"+dir+"/")}}},
	}}}
	ls, err := backups.List(ctx, rb, "demo", "db", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ls[0].OK || !strings.Contains(ls[0].Verdict, "no backups in file://"+dir) {
		t.Errorf("empty dir verdict = %q", ls[0].Verdict)
	}
	p := filepath.Join(dir, "demo.dump")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-30 * time.Minute)
	if err := os.Chtimes(p, then, then); err != nil {
		t.Fatal(err)
	}
	ls, err = backups.List(ctx, rb, "demo", "", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !ls[0].OK || ls[0].Verdict != "RPO 1h: newest backup 30m old, OK" {
		t.Errorf("verdict = %q", ls[0].Verdict)
	}
	if _, err := backups.List(ctx, rb, "demo", "models", nil, time.Now()); err == nil {
		t.Error("models of a service without models: want a refusal")
	}
}
