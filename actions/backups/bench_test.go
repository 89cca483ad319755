package backups_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

// Benchmark knobs.
const (
	// benchListingObjectsEnv sets how many backups BenchmarkBackupsListing
	// lists (default 100,000).
	benchListingObjectsEnv = "DRBOT_BENCH_LISTING_OBJECTS"
	// benchListingBackendEnv picks where they are: "file" (default, a
	// directory) or "s3" (the server testenv.BenchS3 picks: moto, or
	// versitygw with DRBOT_BENCH_S3=versitygw).
	benchListingBackendEnv = "DRBOT_BENCH_LISTING_BACKEND"
)

// BenchmarkBackupsListing lists a location of 100,000 database backups two
// ways and reports the peak heap in use while listing (peak-heap-MiB,
// sampled every millisecond above the heap before the listing) and the
// process's peak RSS (maxrss-MiB; it only grows, so run one sub-benchmark
// per process to read it, e.g. -bench 'BackupsListing/bounded'):
//
//   - bounded: /dr backups as it is now (backups.List: pages through the
//     listing keeping the newest MaxRows rows);
//   - whole: what it did before (storage List: every object in one slice,
//     sorted, one row per object).
//
// Both must give the same newest rows (checked; the benchmark fails on a
// wrong answer, never on time or memory).
func BenchmarkBackupsListing(b *testing.B) {
	n := 100_000
	if v := os.Getenv(benchListingObjectsEnv); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x <= 0 {
			b.Fatalf("%s=%q: want a positive number", benchListingObjectsEnv, v)
		}
		n = x
	}
	ctx := context.Background()
	var (
		loc   runbook.Location
		open  backups.Opener
		exact = true
	)
	switch be := os.Getenv(benchListingBackendEnv); be {
	case "", "file":
		dir := b.TempDir()
		began := time.Now()
		for i := range n {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("backup-%06d.dump", i)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("file: %d backups written in %s", n, time.Since(began).Round(time.Millisecond))
		loc = mustLoc(b, "file://"+dir+"/")
		open = backups.DefaultOpener
	case "s3":
		server, endpoint, access, secret := testenv.BenchS3(b)
		cfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(endpoint, access, secret))
		if err != nil {
			b.Fatal(err)
		}
		c := awsconf.S3(cfg)
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench-listing")}); err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		seedS3(b, c, n)
		b.Logf("%s: %d backups written in %s", server, n, time.Since(began).Round(time.Millisecond))
		loc = mustLoc(b, "s3://bench-listing/db/")
		exact = false
		open = func(ctx context.Context, l runbook.Location) (storage.Store, error) {
			return storage.New(ctx, l, storage.Options{S3: c})
		}
	default:
		b.Fatalf("%s=%q: want file or s3", benchListingBackendEnv, be)
	}
	rb := &runbook.Config{Services: []runbook.Service{{
		Name: "bench", Databases: []runbook.Database{{Name: "bench", URLEnv: "X", Backups: &runbook.Backups{Location: loc}}},
	}}}
	newest := fmt.Sprintf("backup-%06d.dump", n-1)
	if !exact {
		newest = ""
	}

	b.Run("bounded", func(b *testing.B) {
		measure(b, func() string {
			ls, err := backups.List(ctx, rb, "bench", "db", open, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if ls[0].Total != n || len(ls[0].Rows) != backups.MaxRows {
				b.Fatalf("listed %d rows of %d, want %d of %d", len(ls[0].Rows), ls[0].Total, backups.MaxRows, n)
			}
			return ls[0].Rows[0].Name
		}, newest, n)
	})
	b.Run("whole", func(b *testing.B) {
		measure(b, func() string {
			st, err := open(ctx, loc)
			if err != nil {
				b.Fatal(err)
			}
			objs, err := st.List(ctx)
			if err != nil {
				b.Fatal(err)
			}
			rows := make([]backups.Row, 0, len(objs))
			for _, o := range objs {
				rows = append(rows, backups.Row{Name: o.Name, Size: o.Size, Objects: 1, Newest: o.LastModified})
			}
			if len(rows) != n {
				b.Fatalf("listed %d, want %d", len(rows), n)
			}
			return rows[0].Name
		}, newest, n)
	})
}

// measure runs list b.N times, checking its newest row, and reports the
// peak heap above the starting heap and the process's peak RSS.
func measure(b *testing.B, list func() string, newest string, n int) {
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		base := heapBytes()
		stop, got := sampleHeap(), ""
		b.StartTimer()
		got = list()
		b.StopTimer()
		if p := stop(); p > base && p-base > peak {
			peak = p - base
		}
		// On S3 (times in seconds, written 32 at a time) a key written just
		// before the last one may land in a later second: only files are
		// exactly ordered by their writing.
		if got != newest && (newest != "" || !strings.HasPrefix(got, "backup-")) {
			b.Fatalf("newest row %q, want %q", got, newest)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB") // Linux: KiB
	}
	b.ReportMetric(float64(n), "objects")
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapSample[0].Name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap every millisecond until the returned stop is
// called, which returns the highest sample.
func sampleHeap() func() uint64 {
	done := make(chan struct{})
	var (
		mu   sync.Mutex
		peak = heapBytes()
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if h := heapBytes(); h > peak {
					mu.Lock()
					peak = h
					mu.Unlock()
				}
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		if h := heapBytes(); h > peak {
			peak = h
		}
		return peak
	}
}

func seedS3(b *testing.B, c *s3.Client, n int) {
	ctx := context.Background()
	keys := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 32 {
		wg.Go(func() {
			for i := range keys {
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench-listing"),
					Key: aws.String(fmt.Sprintf("db/backup-%06d.dump", i)), Body: strings.NewReader("x")}); err != nil {
					select {
					case errs <- err:
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

func mustLoc(b *testing.B, s string) runbook.Location {
	l, err := runbook.ParseLocation(s)
	if err != nil {
		b.Fatal(err)
	}
	return l
}
