package mount

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secretsfs/secretsfs/cache"
)

// newSecretsClient builds the Secrets Manager client the daemon uses: the
// SDK's default chain narrowed by region and profile (or env's static key
// alone), an optional role assumed through STS, and an optional endpoint.
func newSecretsClient(ctx context.Context, cfg Config, env Env) (*secretsmanager.Client, error) {
	opts := []func(*config.LoadOptions) error{}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	var awsCfg aws.Config
	if (env.StaticKeyID == "") != (env.StaticSecretKey == "") {
		return nil, errors.New("mount.Env: give both StaticKeyID and StaticSecretKey, or neither")
	}
	if env.StaticKeyID != "" {
		awsCfg = aws.Config{
			Region:      cfg.Region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(env.StaticKeyID, env.StaticSecretKey, "")),
		}
	} else {
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("load the AWS configuration (check --profile, AWS_PROFILE and ~/.aws/config): %w", err)
		}
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region: give --region or set AWS_REGION")
	}
	if cfg.RoleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName()
		})
		awsCfg.Credentials = aws.NewCredentialsCache(provider)
	}
	var smOpts []func(*secretsmanager.Options)
	if cfg.EndpointURL != "" {
		endpoint := cfg.EndpointURL
		smOpts = append(smOpts, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	return cache.NewClientFromConfig(awsCfg, cfg.Version, smOpts...), nil
}

// sessionName names the assumed role's sessions after the host, so that
// CloudTrail tells which host read a secret.
func sessionName() string {
	name := "secretsfs"
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "-" + h
	}
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(out) < 64; i++ {
		b := name[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '=' || b == ',' || b == '.' || b == '@' || b == '-' || b == '_' {
			out = append(out, b)
		}
	}
	return string(out)
}
