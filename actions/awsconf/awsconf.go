// Package awsconf builds AWS SDK clients the same way for every action: the
// SDK's own configuration chain (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3,
// profiles, IRSA, …), a per-call region override, and path-style S3 addressing
// whenever an endpoint override is in effect (what S3-compatible servers such as
// moto or versitygw need).
package awsconf

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Load returns the SDK configuration; region, when not empty, overrides the
// configured one (the inflow runbook's replica lives in another region).
// extra options are applied after drbot's (tests pass static credentials and an
// endpoint here).
func Load(ctx context.Context, region string, extra ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	opts = append(opts, extra...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}

// S3 returns an S3 client for cfg, path-style when an endpoint override is set
// (cfg.BaseEndpoint, AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3).
func S3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if PathStyle(cfg) {
			o.UsePathStyle = true
		}
	})
}

// PathStyle reports whether S3 must be addressed path-style: an endpoint
// override points at an S3-compatible server, which virtual-host addressing
// (bucket.host) cannot reach.
func PathStyle(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
}

// Static returns a LoadOptions function setting fixed credentials and an
// endpoint; for tests against moto_server and for the demo.
func Static(endpoint, accessKey, secretKey string) func(*config.LoadOptions) error {
	return func(o *config.LoadOptions) error {
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, Source: "drbot-static"}, nil
		})
		if endpoint != "" {
			o.BaseEndpoint = endpoint
		}
		return nil
	}
}
