package mount

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	c := DefaultConfig()
	c.MountPoint = "/mnt/secrets"
	return c
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	c := DefaultConfig()
	if c.RefreshInterval != time.Hour || c.ListInterval != 5*time.Minute || c.FileMode != 0o400 || c.DirMode != 0o500 || c.DefaultStage != "AWSCURRENT" {
		t.Fatalf("DefaultConfig() = %+v", c)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		flag   string
		change func(*Config)
	}{
		{"MOUNTPOINT", func(c *Config) { c.MountPoint = "" }},
		{"--refresh-interval", func(c *Config) { c.RefreshInterval = 0 }},
		{"--max-cache-size", func(c *Config) { c.MaxCacheSize = 0 }},
		{"--retry-delay-base", func(c *Config) { c.RetryDelayBase = -time.Second }},
		{"--retry-growth-factor", func(c *Config) { c.RetryGrowthFactor = 0.5 }},
		{"--retry-growth-factor", func(c *Config) { c.RetryGrowthFactor = math.NaN() }},
		{"--retry-delay-max", func(c *Config) { c.RetryDelayMax = time.Millisecond }},
		{"--default-stage", func(c *Config) { c.DefaultStage = "" }},
		{"--region", func(c *Config) { c.Region = "US East" }},
		{"--profile", func(c *Config) { c.Profile = " dev" }},
		{"--endpoint-url", func(c *Config) { c.EndpointURL = "localhost:4566" }},
		{"--endpoint-url", func(c *Config) { c.EndpointURL = "ftp://host" }},
		{"--role-arn", func(c *Config) { c.RoleARN = "secretsfs-role" }},
		{"--role-arn", func(c *Config) { c.RoleARN = "arn:aws:iam::123456789012:user/bob" }},
		{"--file-mode", func(c *Config) { c.FileMode = os.ModeSetuid | 0o400 }},
		{"--dir-mode", func(c *Config) { c.DirMode = os.ModeDir | 0o500 }},
		{"--prefix", func(c *Config) { c.Prefixes = []string{"ok/", ""} }},
		{"--prefix", func(c *Config) { c.Prefixes = []string{"bad:prefix"} }},
		{"--tag", func(c *Config) { c.Tags = []Tag{{Key: "", Value: "v"}} }},
		{"--list-interval", func(c *Config) { c.ListInterval = 0 }},
		{"--secret", func(c *Config) { c.Secrets = []string{""} }},
		{"--secret", func(c *Config) { c.Secrets = []string{"a"}; c.Prefixes = []string{"b"} }},
		{"--log-level", func(c *Config) { c.LogLevel = "loud" }},
		{"--log-format", func(c *Config) { c.LogFormat = "xml" }},
	} {
		c := validConfig()
		tc.change(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: Validate() accepted %+v", tc.flag, c)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, tc.flag+": ") || strings.Count(msg, "\n") != 0 {
			t.Errorf("%s: error %q does not name only that flag", tc.flag, msg)
		}
	}
}

func TestValidateReportsEveryBadField(t *testing.T) {
	c := validConfig()
	c.RefreshInterval, c.LogFormat = -1, "yaml"
	msg := c.Validate().Error()
	if !strings.Contains(msg, "--refresh-interval") || !strings.Contains(msg, "--log-format") {
		t.Fatalf("Validate() = %q, want both flags", msg)
	}
}

func TestValidateAcceptsGoodValues(t *testing.T) {
	c := validConfig()
	c.Region, c.EndpointURL = "eu-west-1", "http://127.0.0.1:4566"
	c.RoleARN = "arn:aws-cn:iam::123456789012:role/path/secretsfs"
	c.Prefixes, c.Tags = []string{"prod/", "a+b=c.d@e-f_g"}, []Tag{{Key: "env", Value: ""}, {Key: "k é", Value: "v"}}
	c.FileMode, c.DirMode, c.LogLevel, c.LogFormat = 0o440, 0o550, "debug", "json"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestParseTag(t *testing.T) {
	for in, want := range map[string]Tag{"env=prod": {Key: "env", Value: "prod"}, "k=": {Key: "k", Value: ""}, "a=b=c": {Key: "a", Value: "b=c"}} {
		if got, err := ParseTag(in); err != nil || got != want {
			t.Errorf("ParseTag(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "env", "=prod"} {
		if _, err := ParseTag(in); err == nil {
			t.Errorf("ParseTag(%q) accepted", in)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"0400": 0o400, "400": 0o400, "0": 0, "0777": 0o777} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %o, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0800", "rw", "-1", "01000", "4755"} {
		if _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) accepted", in)
		}
	}
}

// TestDefect9_15_IntervalsHaveLowerBounds: a refresh, listing or retry
// interval of 1ns makes the daemon call Secrets Manager in a tight loop.
// Each has a lower bound; the error names the flag, the bound and the fix.
func TestDefect9_15_IntervalsHaveLowerBounds(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		min   time.Duration
		below func(*Config)
		at    func(*Config)
	}{
		{"--refresh-interval", MinRefreshInterval,
			func(c *Config) { c.RefreshInterval = time.Nanosecond },
			func(c *Config) { c.RefreshInterval = MinRefreshInterval }},
		{"--list-interval", MinListInterval,
			func(c *Config) { c.ListInterval = MinListInterval - time.Millisecond },
			func(c *Config) { c.ListInterval = MinListInterval }},
		{"--retry-delay-base", MinRetryDelayBase,
			func(c *Config) { c.RetryDelayBase = time.Nanosecond },
			func(c *Config) { c.RetryDelayBase = MinRetryDelayBase }},
		{"--retry-delay-max", MinRetryDelayMax,
			func(c *Config) {
				c.RetryDelayBase, c.RetryDelayMax = MinRetryDelayBase, MinRetryDelayMax-time.Millisecond
			},
			func(c *Config) { c.RetryDelayBase, c.RetryDelayMax = MinRetryDelayBase, MinRetryDelayMax }},
	} {
		if tc.min <= time.Millisecond {
			t.Errorf("%s: the bound %v is no bound", tc.flag, tc.min)
		}
		c := validConfig()
		tc.below(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: Validate() accepted a value below the bound", tc.flag)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, tc.flag+": ") || strings.Count(msg, "\n") != 0 ||
			!strings.Contains(msg, "at least "+tc.min.String()) {
			t.Errorf("%s: error %q does not name only the flag and its bound (at least %v)", tc.flag, msg, tc.min)
		}
		c = validConfig()
		tc.at(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() refused the bound itself: %v", tc.flag, err)
		}
	}
}
