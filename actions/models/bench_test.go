package models_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

// benchObjectsEnv overrides how many objects BenchmarkRestoreModelsVsAWSS3Sync
// copies.
const benchObjectsEnv = "DRBOT_BENCH_MODELS_OBJECTS"

const (
	benchBucket         = "bench"
	benchBackupPrefix   = "backup/"
	benchDefaultObjects = 2000
)

// BenchmarkRestoreModelsVsAWSS3Sync seeds s3://bench/backup/ on moto_server
// (or, with DRBOT_BENCH_S3=versitygw, on a versitygw of its own) with
// DRBOT_BENCH_MODELS_OBJECTS small objects (default 2,000) and, in the
// same run against the same server, copies them into empty prefixes two ways:
// drbot's restore-models (Plan + Execute, default parallelism, no workload
// restart) and the runbook's manual way, `aws s3 sync s3://bench/backup/
// s3://bench/aws-N/` (the CLI's defaults). Both targets must then hold every
// object with the backup's ETag (a correctness check: the benchmark fails on
// a missing or different object, never on timing).
//
// Each run copies into fresh prefixes; the second copy of a run meets a
// fuller bucket, so runs alternate which goes first (-benchtime 2x evens it
// out). It reports drbot-s and aws-s (seconds per run), speedup-x (aws-s /
// drbot-s) and objects, and logs each run's times; ns/op is drbot's time
// alone (the sync and the checks run with the timer stopped). moto_server
// answers from one Python process: both ways are bounded by it, so read the
// ratio, not the absolute times; versitygw is much less of a bound.
func BenchmarkRestoreModelsVsAWSS3Sync(b *testing.B) {
	n := benchDefaultObjects
	if v := os.Getenv(benchObjectsEnv); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x <= 0 {
			b.Fatalf("%s=%q: want a positive number of objects", benchObjectsEnv, v)
		}
		n = x
	}
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		b.Fatalf("the manual baseline needs the aws CLI on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()

	server, endpoint, access, secret := testenv.BenchS3(b)
	b.Logf("S3 server: %s (%s)", server, endpoint)
	load := func(ctx context.Context, region string) (aws.Config, error) {
		return awsconf.Load(ctx, region, awsconf.Static(endpoint, access, secret))
	}
	cfg, err := load(ctx, "us-east-1")
	if err != nil {
		b.Fatal(err)
	}
	client := awsconf.S3(cfg)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(benchBucket)}); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	seedModels(ctx, b, client, n)
	b.Logf("seeded %d objects in %s", n, time.Since(began).Round(time.Millisecond))
	want := listETags(ctx, b, client, benchBackupPrefix)
	if len(want) != n {
		b.Fatalf("the backup holds %d objects, want %d", len(want), n)
	}

	// The aws CLI runs with the server's credentials and none of the caller's AWS
	// settings (profiles, endpoints, a ~/.aws/config tuning the transfers).
	cliDir := b.TempDir()
	env := []string{
		"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(cliDir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(cliDir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}

	var drbotTotal, awsTotal time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		drbotPrefix, awsPrefix := fmt.Sprintf("drbot-%d/", i), fmt.Sprintf("aws-%d/", i)
		var drbotTook, awsTook time.Duration
		// drbot: Plan + Execute into an empty prefix; only this runs timed.
		runDrbot := func() {
			a := models.New(benchConfig(b, drbotPrefix), load, nil)
			b.StartTimer()
			began := time.Now()
			plan, err := a.Plan(ctx, actions.Params{Service: "bench"})
			if err != nil {
				b.Fatalf("plan: %v", err)
			}
			if err := a.Execute(ctx, plan, actiontest.NewJournal()); err != nil {
				b.Fatalf("execute: %v", err)
			}
			drbotTook = time.Since(began)
			b.StopTimer()
		}
		// The runbook's way, into another empty prefix of the same bucket.
		runAWS := func() {
			cmd := exec.CommandContext(ctx, awsPath, "s3", "sync", "--endpoint-url", endpoint, "--only-show-errors",
				"s3://"+benchBucket+"/"+benchBackupPrefix, "s3://"+benchBucket+"/"+awsPrefix)
			cmd.Env = env
			began := time.Now()
			out, err := cmd.CombinedOutput()
			awsTook = time.Since(began)
			if err != nil {
				b.Fatalf("aws s3 sync: %v\n%s", err, out)
			}
		}
		// The second copy meets a fuller bucket: alternate which goes first
		// (drbot on even runs) so -benchtime 2x and more even it out.
		first := "drbot"
		if i%2 == 0 {
			runDrbot()
			runAWS()
		} else {
			first = "aws"
			runAWS()
			runDrbot()
		}
		b.Logf("run %d: drbot %s, aws s3 sync %s (%s first)", i, drbotTook.Round(time.Millisecond), awsTook.Round(time.Millisecond), first)
		drbotTotal += drbotTook
		awsTotal += awsTook
		for _, p := range []string{drbotPrefix, awsPrefix} {
			checkCopy(ctx, b, client, p, want)
		}
		b.StartTimer()
	}
	b.StopTimer()
	runs := float64(b.N)
	b.ReportMetric(float64(n), "objects")
	b.ReportMetric(drbotTotal.Seconds()/runs, "drbot-s")
	b.ReportMetric(awsTotal.Seconds()/runs, "aws-s")
	b.ReportMetric(awsTotal.Seconds()/drbotTotal.Seconds(), "speedup-x")
}

// benchConfig is a service restoring s3://bench/backup/ onto target, with no
// workloads to restart.
func benchConfig(b *testing.B, target string) *runbook.Config {
	b.Helper()
	backups, err := runbook.ParseLocation("s3://" + benchBucket + "/" + benchBackupPrefix)
	if err != nil {
		b.Fatal(err)
	}
	tgt, err := runbook.ParseLocation("s3://" + benchBucket + "/" + target)
	if err != nil {
		b.Fatal(err)
	}
	return &runbook.Config{Services: []runbook.Service{{Name: "bench", Models: &runbook.Models{Backups: backups, Target: tgt}}}}
}

// seedModels puts n small objects under the backup prefix, spread over 20
// "layer" folders (names starting with a letter: a mirror, copied whole, not
// dated snapshots).
func seedModels(ctx context.Context, b *testing.B, client *s3.Client, n int) {
	b.Helper()
	keys := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range keys {
				key := fmt.Sprintf("%slayer-%02d/shard-%05d.bin", benchBackupPrefix, i%20, i)
				body := bytes.Repeat([]byte(fmt.Sprintf("weights %d;", i)), 1+i%16)
				if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
					select {
					case errs <- fmt.Errorf("seed s3://%s/%s: %w", benchBucket, key, err):
					default:
					}
				}
			}
		})
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// listETags returns the ETags of the objects under prefix, keyed relative to it.
func listETags(ctx context.Context, b *testing.B, client *s3.Client, prefix string) map[string]string {
	b.Helper()
	out := map[string]string{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(benchBucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			b.Fatalf("list s3://%s/%s: %v", benchBucket, prefix, err)
		}
		for _, o := range page.Contents {
			out[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = aws.ToString(o.ETag)
		}
	}
	return out
}

// checkCopy fails the benchmark unless prefix holds exactly the backup's
// objects with their ETags.
func checkCopy(ctx context.Context, b *testing.B, client *s3.Client, prefix string, want map[string]string) {
	b.Helper()
	got := listETags(ctx, b, client, prefix)
	for k, etag := range want {
		if g, ok := got[k]; !ok {
			b.Fatalf("s3://%s/%s has %d of %d objects: %s is missing", benchBucket, prefix, len(got), len(want), k)
		} else if g != etag {
			b.Fatalf("s3://%s/%s%s has ETag %s, the backup %s", benchBucket, prefix, k, g, etag)
		}
	}
	if len(got) != len(want) {
		b.Fatalf("s3://%s/%s has %d objects, want %d", benchBucket, prefix, len(got), len(want))
	}
}
