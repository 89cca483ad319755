package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/runbook"
)

// S3API is the part of *s3.Client a Store uses.
type S3API interface {
	s3.ListObjectsV2APIClient
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

type s3Store struct {
	loc      runbook.Location
	client   S3API
	pageSize int32
}

func newS3(ctx context.Context, loc runbook.Location, opts Options) (*s3Store, error) {
	client := opts.S3
	if client == nil {
		cfg, err := awsconf.Load(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", loc.String(), err)
		}
		client = awsconf.S3(cfg)
	}
	return &s3Store{loc: loc, client: client, pageSize: opts.PageSize}, nil
}

func (s *s3Store) Location() runbook.Location { return s.loc }

func (s *s3Store) List(ctx context.Context) ([]Object, error) { return collect(ctx, s) }

func (s *s3Store) Walk(ctx context.Context, fn func(Object) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.loc.Bucket)}
	if s.loc.Prefix != "" {
		in.Prefix = aws.String(s.loc.Prefix)
	}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", s.loc.String(), classify(err))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") {
				continue // a "directory" placeholder
			}
			if err := fn(Object{
				Key:          key,
				Name:         s.name(key),
				Size:         aws.ToInt64(o.Size),
				LastModified: aws.ToTime(o.LastModified).UTC(),
				ETag:         aws.ToString(o.ETag),
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// name is key relative to the prefix.
func (s *s3Store) name(key string) string {
	if n, ok := strings.CutPrefix(key, s.loc.Prefix); ok && n != "" {
		return n
	}
	return key
}

// fullKey turns a user's key (full, or relative to the prefix) into a key.
func (s *s3Store) fullKey(key string) string {
	key = strings.TrimPrefix(key, "/")
	if s.loc.Prefix == "" || strings.HasPrefix(key, s.loc.Prefix) {
		return key
	}
	return s.loc.Prefix + key
}

func (s *s3Store) Stat(ctx context.Context, key string) (Object, error) {
	full := s.fullKey(key)
	if full == "" || strings.HasSuffix(full, "/") {
		return Object{}, fmt.Errorf("stat s3://%s/%s: %w", s.loc.Bucket, full, ErrNotFound)
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(full)})
	if err != nil {
		return Object{}, fmt.Errorf("stat s3://%s/%s: %w", s.loc.Bucket, full, classify(err))
	}
	return Object{
		Key:          full,
		Name:         s.name(full),
		Size:         aws.ToInt64(head.ContentLength),
		LastModified: aws.ToTime(head.LastModified).UTC(),
		ETag:         aws.ToString(head.ETag),
		VersionID:    aws.ToString(head.VersionId),
	}, nil
}

func (s *s3Store) Open(ctx context.Context, obj Object) (io.ReadCloser, error) {
	if obj.ETag == "" && obj.VersionID == "" {
		return nil, fmt.Errorf("open s3://%s/%s: object is not pinned (no ETag or version)", s.loc.Bucket, obj.Key)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(obj.Key)}
	if obj.ETag != "" {
		in.IfMatch = aws.String(obj.ETag)
	}
	if obj.VersionID != "" {
		in.VersionId = aws.String(obj.VersionID)
	}
	out, err := s.client.GetObject(ctx, in, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		return nil, fmt.Errorf("open s3://%s/%s: %w", s.loc.Bucket, obj.Key, classify(err))
	}
	// Belt and braces: a server that ignores If-Match must not hand us
	// another object either.
	if got := aws.ToString(out.ETag); obj.ETag != "" && got != "" && got != obj.ETag {
		_ = out.Body.Close()
		return nil, fmt.Errorf("open s3://%s/%s: ETag is %s, pinned %s: %w", s.loc.Bucket, obj.Key, got, obj.ETag, ErrChanged)
	}
	if got := aws.ToInt64(out.ContentLength); out.ContentLength != nil && got != obj.Size {
		_ = out.Body.Close()
		return nil, fmt.Errorf("open s3://%s/%s: size is %d, pinned %d: %w", s.loc.Bucket, obj.Key, got, obj.Size, ErrChanged)
	}
	return &sizedReader{r: out.Body, c: out.Body, want: obj.Size, what: "s3://" + s.loc.Bucket + "/" + obj.Key}, nil
}

// classify wraps S3's "not found" and "precondition failed" answers in
// ErrNotFound and ErrChanged.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchVersion":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "PreconditionFailed":
			return fmt.Errorf("%w: %w", ErrChanged, err)
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %w", ErrChanged, err)
		}
	}
	return err
}

// sizedReader checks that exactly want bytes arrive: fewer (a truncated
// stream) or more is an error at the end of the stream.
type sizedReader struct {
	r    io.Reader
	c    io.Closer
	n    int64
	want int64
	what string
	// atEOF, when set, runs at the end of the stream (file identity re-check).
	atEOF func() error
}

func (s *sizedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n > s.want {
		return n, fmt.Errorf("read %s: more than the pinned %d bytes: %w", s.what, s.want, ErrChanged)
	}
	if errors.Is(err, io.EOF) {
		if s.n != s.want {
			return n, fmt.Errorf("read %s: stream ended after %d of %d bytes: %w", s.what, s.n, s.want, io.ErrUnexpectedEOF)
		}
		if s.atEOF != nil {
			if cerr := s.atEOF(); cerr != nil {
				return n, cerr
			}
		}
		return n, io.EOF
	}
	if err != nil {
		return n, fmt.Errorf("read %s: %w", s.what, err)
	}
	return n, nil
}

func (s *sizedReader) Close() error { return s.c.Close() }
