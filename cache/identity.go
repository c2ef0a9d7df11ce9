package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Identity says how a client reaches Secrets Manager and as whom. It is
// comparable, so that callers can share one client (and one cache) among
// uses of the same identity.
type Identity struct {
	// Region and Profile narrow the SDK's default configuration chain;
	// empty leaves them to the environment (AWS_REGION, AWS_PROFILE).
	Region, Profile string
	// EndpointURL, when set, replaces Secrets Manager's endpoint.
	EndpointURL string
	// RoleARN, when set, is assumed through STS with the credentials the
	// chain (or the static key) gives.
	RoleARN string
	// StaticKeyID and StaticSecretKey, when set, sign every call instead of
	// the SDK's default credential chain, and no shared AWS configuration
	// (profiles, ~/.aws) is read. Give both or neither.
	StaticKeyID, StaticSecretKey string
	// Workload, when set, is a Kubernetes workload whose service-account
	// tokens give the credentials (RoleARN through
	// AssumeRoleWithWebIdentity, else the EKS Pod Identity agent); the
	// process's own are never used then.
	Workload Workload
}

// String describes the identity without its secret key.
func (id Identity) String() string {
	key := ""
	if id.StaticSecretKey != "" {
		key = "(set)"
	}
	s := fmt.Sprintf("region=%q profile=%q endpoint=%q role=%q key-id=%q secret-key=%s",
		id.Region, id.Profile, id.EndpointURL, id.RoleARN, id.StaticKeyID, key)
	if id.Workload.IsSet() {
		s += fmt.Sprintf(" workload=%s/%s", id.Workload.Namespace, id.Workload.ServiceAccount)
	}
	return s
}

// GoString is String, so that %#v does not print the secret key either.
func (id Identity) GoString() string { return "cache.Identity{" + id.String() + "}" }

// IsRoleARN reports whether s is an IAM role's ARN, such as
// arn:aws:iam::123456789012:role/secretsfs.
func IsRoleARN(s string) bool {
	a, err := arn.Parse(s)
	return err == nil && a.Service == "iam" && strings.HasPrefix(a.Resource, "role/")
}

// NewClient builds a Secrets Manager client for id: the SDK's default chain
// narrowed by region and profile (or the static key alone), an optional
// role assumed through STS, and an optional endpoint; or, for a Workload,
// the workload's credentials alone. Every request carries
// "secretsfs/<version>" in its User-Agent.
func NewClient(ctx context.Context, id Identity, version string) (*secretsmanager.Client, error) {
	if (id.StaticKeyID == "") != (id.StaticSecretKey == "") {
		return nil, errors.New("cache.Identity: give both StaticKeyID and StaticSecretKey, or neither")
	}
	var awsCfg aws.Config
	if id.Workload.IsSet() {
		var err error
		if awsCfg, err = workloadConfig(id); err != nil {
			return nil, err
		}
	} else if id.StaticKeyID != "" {
		awsCfg = aws.Config{
			Region:      id.Region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id.StaticKeyID, id.StaticSecretKey, "")),
		}
	} else {
		var opts []func(*config.LoadOptions) error
		if id.Region != "" {
			opts = append(opts, config.WithRegion(id.Region))
		}
		if id.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(id.Profile))
		}
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("load the AWS configuration (check --profile, AWS_PROFILE and ~/.aws/config): %w", err)
		}
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region: give --region or set AWS_REGION")
	}
	if id.RoleARN != "" && !id.Workload.IsSet() {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), id.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName()
		})
		awsCfg.Credentials = aws.NewCredentialsCache(provider)
	}
	var smOpts []func(*secretsmanager.Options)
	if id.EndpointURL != "" {
		endpoint := id.EndpointURL
		smOpts = append(smOpts, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	return NewClientFromConfig(awsCfg, version, smOpts...), nil
}

// sessionName names the assumed role's sessions after the host, so that
// CloudTrail tells which host read a secret.
func sessionName() string {
	name := "secretsfs"
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "-" + h
	}
	return cleanSessionName(name)
}

// cleanSessionName keeps of name what a role session name may hold: at most
// 64 of the characters A-Z a-z 0-9 =,.@-_.
func cleanSessionName(name string) string {
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(out) < 64; i++ {
		b := name[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '=' || b == ',' || b == '.' || b == '@' || b == '-' || b == '_' {
			out = append(out, b)
		}
	}
	return string(out)
}
