package mount

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// Defaults of the settings that are not the cache's own.
const (
	DefaultFileMode     os.FileMode = 0o400
	DefaultDirMode      os.FileMode = 0o500
	DefaultFsName                   = "secretsfs"
	DefaultListInterval             = 5 * time.Minute
	DefaultLogLevel                 = "info"
	DefaultLogFormat                = "text"
)

// Lower bounds of the intervals: below them the daemon would call Secrets
// Manager in a tight loop (every secret, every interval) for no gain.
const (
	// MinRefreshInterval bounds --refresh-interval: one DescribeSecret per
	// secret per interval.
	MinRefreshInterval = time.Second
	// MinListInterval bounds --list-interval: a full listing, one
	// ListSecrets call per 100 secrets, per interval.
	MinListInterval = 10 * time.Second
	// MinRetryDelayBase bounds --retry-delay-base, the first wait after a
	// failure.
	MinRetryDelayBase = 100 * time.Millisecond
	// MinRetryDelayMax bounds --retry-delay-max, the wait between retries
	// once a failure lasts: the call rate of every failing secret during an
	// outage.
	MinRetryDelayMax = time.Second
)

// Tag is a tag a listed secret must carry, with exactly this key and value;
// its String is KEY=VALUE, the form ParseTag reads.
type Tag = cache.Tag

// Config holds everything the daemon needs. Start from DefaultConfig; Validate
// names the command-line flag of each bad field and how to fix it.
type Config struct {
	// MountPoint is the existing directory the filesystem is mounted on.
	MountPoint string

	// RefreshInterval is how long a secret's metadata is trusted before it
	// is asked for again (cache.Config.SecretRefreshInterval). Shorter
	// shows rotations sooner at the price of one DescribeSecret per secret
	// per interval.
	RefreshInterval time.Duration
	// MaxCacheSize is how many secrets the cache keeps; a mount showing more
	// secrets than this costs extra calls when they are all read in turn.
	MaxCacheSize int
	// RetryDelayBase is the wait after the first failed refresh of a secret.
	RetryDelayBase time.Duration
	// RetryGrowthFactor multiplies the wait after each further failure (at
	// least 1).
	RetryGrowthFactor float64
	// RetryDelayMax caps the wait between retries: smaller notices recovery
	// sooner and costs more calls during an outage.
	RetryDelayMax time.Duration
	// DefaultStage is the stage whose value a JSON secret's key files show.
	DefaultStage string

	// Region is the AWS region; empty means the SDK's own chain (AWS_REGION,
	// the profile's region).
	Region string
	// Profile is the shared configuration profile; empty means the default
	// one (or AWS_PROFILE).
	Profile string
	// EndpointURL replaces the Secrets Manager endpoint, e.g. for a VPC
	// endpoint or an emulator. Empty means the SDK's (which honours
	// AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL).
	EndpointURL string
	// RoleARN, when set, is assumed through STS with the credentials the
	// SDK finds, and its temporary credentials are used for every call.
	RoleARN string

	// UID and GID own every file and directory; the mounting user's by
	// default.
	UID, GID uint32
	// FileMode is the permission of secret files (0400 by default).
	FileMode os.FileMode
	// DirMode is the permission of directories (0500 by default).
	DirMode os.FileMode
	// AllowOther lets other users into the mount; the kernel then enforces
	// FileMode and DirMode (default_permissions). As an ordinary user it
	// needs user_allow_other in /etc/fuse.conf.
	AllowOther bool
	// KernelCache serves reads from the kernel's page cache (fast, no
	// per-open audit) instead of per-open snapshots from the daemon.
	KernelCache bool
	// FsName is the filesystem's source in /proc/mounts; the fstab helper
	// sets it to the entry's first field, so that "mount -a" recognises
	// the entry as mounted and leaves it alone.
	FsName string

	// Prefixes narrow listing mode to secrets whose names start with one of
	// them.
	Prefixes []string
	// Tags narrow listing mode to secrets that carry every one of them.
	Tags []Tag
	// ListInterval is how often the secrets are listed again in listing
	// mode. Shorter shows new and deleted secrets sooner at the price of
	// ListSecrets calls; a new secret is reachable by its path at once
	// anyway.
	ListInterval time.Duration
	// Secrets, when not empty, selects explicit mode: only these secrets
	// (names or ARNs) are shown and ListSecrets is never called.
	Secrets []string

	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// LogFile, when set, is the file the log is appended to instead of
	// stderr (created with mode 0600; reopened on SIGHUP and after a
	// rotation).
	LogFile string
	// Syslog sends the log to the system log (the journal under systemd)
	// instead of stderr; where there is none the log stays on stderr.
	Syslog bool

	// Version goes into the User-Agent of every AWS call
	// ("secretsfs/<version>").
	Version string

	// Features: change hooks, --max-stale, metrics, audit log and memory
	// hygiene (features.go).
	Features

	// Workload, when set (by the CSI driver; no flag), is the Kubernetes
	// workload whose service-account tokens give the mount's credentials,
	// with RoleARN through AssumeRoleWithWebIdentity, else through the EKS
	// Pod Identity agent; the daemon's own credentials are never used then.
	Workload cache.Workload

	// Handover hands the mount point from one daemon to the next, for
	// the containers that bind it (--handover; the CSI driver's volumes):
	// a secretsfs mount found on it, live or stale (of a daemon that is
	// gone), is mounted over instead of detached, and the mount point is
	// left mounted when the daemon stops (Run), to answer ENOTCONN until
	// the next daemon mounts over it. A bind of the mount that a slave
	// mount namespace holds (a container's, with HostToContainer
	// propagation) sees each new mount then, which it would not if the old
	// one were detached. Where the kernel cannot mount over a mount (no
	// new mount API, or not root), the old one is detached.
	Handover bool

	// Mapping, when set (--config), places files at chosen paths; the mount
	// then shows only them, unless ExposeAll. Its Files expose each file's
	// Path, SecretIDs() and OnChange (Mapping.OnChangeOf).
	Mapping *mapping.Config
	// ExposeAll shows the default layout beside the mapped files; a mapped
	// path wins over a default-layout name it clashes with.
	ExposeAll bool
}

// Env is what the program that runs the daemon gives it beside its Config:
// where its output goes, and what a program embedding it (the demo, later a
// driver serving many mounts) needs to hook in or replace.
type Env struct {
	// Stdout gets the "serving" line; Stderr the log (unless --log-file or
	// --syslog). Nil means io.Discard.
	Stdout, Stderr io.Writer
	// OnServing, when set, is called once the mount serves.
	OnServing func()
	// StaticKeyID and StaticSecretKey, when set, sign every AWS call instead
	// of the SDK's default credential chain, and no shared AWS configuration
	// (profiles, ~/.aws) is read: the demo's fake key for its emulator.
	// They are ignored for a mount with a Workload.
	StaticKeyID, StaticSecretKey string
	// Clock, when set, replaces the system clock of a Daemon (NewDaemon):
	// tests drive time with a fake one.
	Clock cache.Clock
}

// withDefaults returns env with io.Discard for missing writers.
func (env Env) withDefaults() Env {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	return env
}

// DefaultConfig returns the defaults: the cache's (refresh every hour, 1024
// secrets, retries from 1 s doubling up to 1 h, AWSCURRENT), files 0400 and
// directories 0500 owned by the calling user, listing every 5 minutes, and
// text logs at info level.
func DefaultConfig() Config {
	return Config{
		RefreshInterval:   cache.DefaultSecretRefreshInterval,
		MaxCacheSize:      cache.DefaultMaxCacheSize,
		RetryDelayBase:    cache.DefaultExceptionRetryDelayBase,
		RetryGrowthFactor: cache.DefaultExceptionRetryGrowthFactor,
		RetryDelayMax:     cache.DefaultExceptionRetryDelayMax,
		DefaultStage:      cache.DefaultVersionStage,
		UID:               uint32(os.Getuid()),
		GID:               uint32(os.Getgid()),
		FileMode:          DefaultFileMode,
		DirMode:           DefaultDirMode,
		FsName:            DefaultFsName,
		ListInterval:      DefaultListInterval,
		LogLevel:          DefaultLogLevel,
		LogFormat:         DefaultLogFormat,
	}
}

// ExplicitMode reports whether only the secrets named in Secrets are shown.
func (c Config) ExplicitMode() bool { return len(c.Secrets) > 0 }

// Cache is the cache's configuration for these settings: the one place where
// the mount's settings become the cache's, for the daemon and for check
// alike. Settings of the cache that the mount does not expose keep the
// cache's defaults. log receives the cache's warnings (nil discards them);
// obs, when not nil, is told of every call to Secrets Manager.
func (c Config) Cache(clock cache.Clock, log *slog.Logger, obs cache.Observer) cache.Config {
	cc := cache.DefaultConfig()
	cc.MaxCacheSize = c.MaxCacheSize
	cc.ExceptionRetryDelayBase = c.RetryDelayBase
	cc.ExceptionRetryGrowthFactor = c.RetryGrowthFactor
	cc.ExceptionRetryDelayMax = c.RetryDelayMax
	cc.DefaultVersionStage = c.DefaultStage
	cc.SecretRefreshInterval = c.RefreshInterval
	cc.Clock = clock
	cc.Logger = log
	cc.Observer = obs
	return cc
}

// identity is whom these settings reach Secrets Manager as, signing with
// env's static key when it gives one, or as the Workload when set.
func (c Config) identity(env Env) cache.Identity {
	id := cache.Identity{Region: c.Region, Profile: c.Profile, EndpointURL: c.EndpointURL, RoleARN: c.RoleARN}
	if c.Workload.IsSet() {
		id.Workload = c.Workload
	} else {
		id.StaticKeyID, id.StaticSecretKey = env.StaticKeyID, env.StaticSecretKey
	}
	return id
}

// FieldError is a problem with one field of a Config: the field's
// command-line flag, and what is wrong with it and the fix. A program that
// takes the settings otherwise (the CSI driver's volume attributes) names
// the field its own way.
type FieldError struct {
	Flag    string // e.g. --refresh-interval, or MOUNTPOINT
	Problem string // e.g. is 0s; give at least 1s, such as 1h or 30s
}

func (e *FieldError) Error() string { return e.Flag + ": " + e.Problem }

// Validate checks every field and returns one error per bad field, each
// naming its command-line flag and the fix (a *FieldError where one field
// is concerned), joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, &FieldError{Flag: flag, Problem: fmt.Sprintf(format, args...)})
	}
	if c.MountPoint == "" {
		bad("MOUNTPOINT", "missing; give the directory to mount on, e.g. secretsfs mount /run/secrets")
	}
	if c.RefreshInterval < MinRefreshInterval {
		bad("--refresh-interval", "is %v; give at least %v, such as 1h or 30s", c.RefreshInterval, MinRefreshInterval)
	}
	if c.MaxCacheSize < 1 {
		bad("--max-cache-size", "is %d; give at least 1", c.MaxCacheSize)
	}
	if c.RetryDelayBase < MinRetryDelayBase {
		bad("--retry-delay-base", "is %v; give at least %v, such as 1s", c.RetryDelayBase, MinRetryDelayBase)
	}
	if !(c.RetryGrowthFactor >= 1) || math.IsInf(c.RetryGrowthFactor, 0) { // also catches NaN
		bad("--retry-growth-factor", "is %v; give a number of at least 1, such as 2", c.RetryGrowthFactor)
	}
	switch {
	case c.RetryDelayMax < MinRetryDelayMax:
		bad("--retry-delay-max", "is %v; give at least %v, such as 1m", c.RetryDelayMax, MinRetryDelayMax)
	case c.RetryDelayMax < c.RetryDelayBase:
		bad("--retry-delay-max", "is %v, less than --retry-delay-base (%v); give a duration at least as long", c.RetryDelayMax, c.RetryDelayBase)
	}
	if c.DefaultStage == "" || len(c.DefaultStage) > 256 {
		bad("--default-stage", "is %q; give a staging label of 1 to 256 characters, usually %s", c.DefaultStage, cache.DefaultVersionStage)
	}
	if c.Region != "" && !validRegion(c.Region) {
		bad("--region", "is %q; give a region name such as us-east-1", c.Region)
	}
	if strings.TrimSpace(c.Profile) != c.Profile {
		bad("--profile", "is %q; remove the surrounding spaces", c.Profile)
	}
	if c.EndpointURL != "" {
		if u, err := url.Parse(c.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("--endpoint-url", "is %q; give an absolute URL such as https://secretsmanager.us-east-1.amazonaws.com", c.EndpointURL)
		}
	}
	if c.RoleARN != "" {
		if !cache.IsRoleARN(c.RoleARN) {
			bad("--role-arn", "is %q; give a role ARN such as arn:aws:iam::123456789012:role/secretsfs", c.RoleARN)
		}
	}
	if c.FileMode&^os.ModePerm != 0 {
		bad("--file-mode", "is %s; give permission bits only, in octal, such as 0400", formatMode(c.FileMode))
	}
	if c.DirMode&^os.ModePerm != 0 {
		bad("--dir-mode", "is %s; give permission bits only, in octal, such as 0500", formatMode(c.DirMode))
	}
	if !validFsName(c.FsName) {
		bad("--fsname", "is %q; give 1 to 255 characters without spaces, commas, backslashes or control characters, such as %s (from /etc/fstab: the entry's first field)", c.FsName, DefaultFsName)
	}
	for _, p := range c.Prefixes {
		if !mapping.ValidSecretName(p) {
			bad("--prefix", "%q is not the start of a secret name; use 1 to 512 of the characters A-Z a-z 0-9 /_+=.@-", p)
		}
	}
	for _, t := range c.Tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			bad("--tag", "%q is not a tag; give KEY=VALUE with a key of 1 to 128 characters and a value of at most 256", t.String())
		}
	}
	if c.ListInterval < MinListInterval {
		bad("--list-interval", "is %v; give at least %v, such as 5m", c.ListInterval, MinListInterval)
	}
	for _, s := range c.Secrets {
		if s == "" || len(s) > 2048 {
			bad("--secret", "%q is not a secret id; give a secret's name or ARN", s)
		}
	}
	if c.ExplicitMode() && (len(c.Prefixes) > 0 || len(c.Tags) > 0) {
		bad("--secret", "shows only the named secrets, while --prefix and --tag narrow a listing; use one or the other")
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("--log-level", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("--log-format", "is %q; give text or json", c.LogFormat)
	}
	if c.LogFile != "" && c.Syslog {
		bad("--log-file", "and --syslog both choose where the log goes; give one of them")
	}
	errs = append(errs, c.Features.validate(c.KernelCache)...)
	if c.ExposeAll && c.Mapping == nil {
		bad("--expose-all", "shows the default layout beside mapped files; give --config FILE too, or drop it")
	}
	return errors.Join(errs...)
}

// ParseTag reads a tag given as KEY=VALUE; the value may be empty, the key
// may not.
func ParseTag(s string) (Tag, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return Tag{}, fmt.Errorf("%q is not KEY=VALUE; give the tag's key and value, e.g. env=prod", s)
	}
	return Tag{Key: k, Value: v}, nil
}

// ParseMode reads a permission in octal, such as "0400" or "400".
func ParseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n&^uint64(os.ModePerm) != 0 {
		return 0, fmt.Errorf("%q is not a permission; give octal permission bits such as 0400", s)
	}
	return os.FileMode(n), nil
}

func formatMode(m os.FileMode) string { return fmt.Sprintf("%#o", uint32(m)) }

// validRegion accepts what region names are made of: lower-case letters,
// digits and dashes.
func validRegion(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return len(s) <= 64
}

// validFsName accepts what can stand as a filesystem's source both in a
// mount(2) call and in fusermount3's comma-separated options.
func validFsName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == ',' || r == '\\' || r == 0x7f {
			return false
		}
	}
	return true
}
