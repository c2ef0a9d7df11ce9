package cache

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The audiences of the service-account tokens a workload's credentials come
// from.
const (
	// AudienceSTS is the audience of the token that
	// AssumeRoleWithWebIdentity takes (IAM Roles for Service Accounts).
	AudienceSTS = "sts.amazonaws.com"
	// AudiencePodIdentity is the audience of the token that the EKS Pod
	// Identity agent takes.
	AudiencePodIdentity = "pods.eks.amazonaws.com"
)

// DefaultPodIdentityAgentURL is the EKS Pod Identity agent's credentials
// endpoint on every node.
const DefaultPodIdentityAgentURL = "http://169.254.170.23/v1/credentials"

// TokenSource gives a workload's latest service-account token for an
// audience, or an error saying why it has none (none given, or expired).
// Tokens stay in memory: they are never written to disk.
type TokenSource interface {
	Token(audience string) (string, error)
}

// Workload is a Kubernetes workload's identity (namespace and service
// account), whose credentials come from its service account's tokens only:
// with Identity.RoleARN, AssumeRoleWithWebIdentity with its AudienceSTS
// token (IRSA); without, the EKS Pod Identity agent at AgentURL with its
// AudiencePodIdentity token. Nothing of the process's own configuration
// (environment, shared files, instance role) is read for it.
type Workload struct {
	Namespace, ServiceAccount string
	// Tokens gives the tokens. It must be comparable (a pointer): two
	// Identities share a client and a cache only when their Tokens are
	// the same.
	Tokens TokenSource
	// STSEndpoint, when set, replaces the region's STS endpoint (an
	// emulator).
	STSEndpoint string
	// AgentURL is the Pod Identity agent's credentials endpoint;
	// DefaultPodIdentityAgentURL when empty.
	AgentURL string
}

// IsSet reports whether the workload gives the credentials.
func (w Workload) IsSet() bool { return w.Tokens != nil }

// workloadConfig is the AWS configuration of a workload's identity: its
// region and its credentials, from its tokens through STS or the Pod
// Identity agent, cached until they expire.
func workloadConfig(id Identity) (aws.Config, error) {
	w := id.Workload
	switch {
	case id.Profile != "" || id.StaticKeyID != "" || id.StaticSecretKey != "":
		return aws.Config{}, errors.New("cache.Identity: a Workload takes its credentials from its tokens only; give no Profile or static key with it")
	case id.Region == "":
		return aws.Config{}, errors.New("cache.Identity: a Workload needs a Region")
	}
	cfg := aws.Config{Region: id.Region}
	var provider aws.CredentialsProvider
	if id.RoleARN != "" {
		client := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if w.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(w.STSEndpoint)
			}
		})
		tokens := identityToken{src: w.Tokens}
		provider = stscreds.NewWebIdentityRoleProvider(client, id.RoleARN, tokens, func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = cleanSessionName("secretsfs-" + w.Namespace + "-" + w.ServiceAccount)
		})
	} else {
		agent := w.AgentURL
		if agent == "" {
			agent = DefaultPodIdentityAgentURL
		}
		if u, err := url.Parse(agent); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return aws.Config{}, fmt.Errorf("cache.Identity: the Pod Identity agent URL %q is not an absolute http(s) URL", agent)
		}
		provider = endpointcreds.New(agent, func(o *endpointcreds.Options) {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				return w.Tokens.Token(AudiencePodIdentity)
			})
		})
	}
	cfg.Credentials = aws.NewCredentialsCache(provider)
	return cfg, nil
}

// identityToken hands a TokenSource's AudienceSTS token to
// AssumeRoleWithWebIdentity.
type identityToken struct{ src TokenSource }

func (t identityToken) GetIdentityToken() ([]byte, error) {
	tok, err := t.src.Token(AudienceSTS)
	if err != nil {
		return nil, err
	}
	return []byte(tok), nil
}
