package cache

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

func TestIdentityStringNeverPrintsTheSecretKey(t *testing.T) {
	id := Identity{Region: "us-east-1", StaticKeyID: "AKIDEXAMPLE", StaticSecretKey: "very-secret-key"}
	for _, s := range []string{id.String(), fmt.Sprint(id), fmt.Sprintf("%v %+v %#v", id, id, id)} {
		if strings.Contains(s, "very-secret-key") {
			t.Fatalf("Identity printed its secret key: %s", s)
		}
		if !strings.Contains(s, "AKIDEXAMPLE") || !strings.Contains(s, "us-east-1") {
			t.Fatalf("Identity's text lacks its key id or region: %s", s)
		}
	}
}

func TestIsRoleARN(t *testing.T) {
	for s, want := range map[string]bool{
		"arn:aws:iam::123456789012:role/secretsfs":      true,
		"arn:aws:iam::123456789012:role/path/secretsfs": true,
		"arn:aws:iam::123456789012:user/secretsfs":      false,
		"arn:aws:sts::123456789012:role/secretsfs":      false,
		"secretsfs": false,
		"":          false,
	} {
		if got := IsRoleARN(s); got != want {
			t.Errorf("IsRoleARN(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNewClientNeedsBothHalvesOfAStaticKey(t *testing.T) {
	_, err := NewClient(context.Background(), Identity{Region: "us-east-1", StaticKeyID: "AKIDEXAMPLE"}, "test")
	if err == nil || !strings.Contains(err.Error(), "StaticSecretKey") {
		t.Fatalf("NewClient with half a static key: %v", err)
	}
}

// The client NewClient builds backs off across all its calls when Secrets
// Manager throttles: its retryer is the SDK's adaptive mode, also when the
// configuration caps the attempts.
func TestIssue12_Engine_ClientRetriesAdaptively(t *testing.T) {
	t.Setenv("AWS_RETRY_MODE", "standard")
	for _, attempts := range []string{"", "5"} {
		t.Setenv("AWS_MAX_ATTEMPTS", attempts)
		for name, id := range map[string]Identity{
			"static key":    {Region: "us-east-1", StaticKeyID: "AKIDEXAMPLE", StaticSecretKey: "k"},
			"default chain": {Region: "us-east-1"},
		} {
			client, err := NewClient(context.Background(), id, "test")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			r := client.Options().Retryer
			if attempts != "" && id.StaticKeyID == "" { // a static key reads no configuration
				if got := r.MaxAttempts(); got != 5 {
					t.Errorf("%s: %d attempts, want the configured 5", name, got)
				}
				r = unwrapRetryer(r)
			}
			if _, ok := r.(*retry.AdaptiveMode); !ok {
				t.Errorf("%s, AWS_MAX_ATTEMPTS=%q: retryer %T, want *retry.AdaptiveMode", name, attempts, r)
			}
		}
	}
}

// unwrapRetryer finds the retryer inside the SDK's max-attempts wrapper
// (an unexported struct embedding it).
func unwrapRetryer(r aws.Retryer) aws.Retryer {
	v := reflect.ValueOf(r)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return r
	}
	if f := v.Elem().FieldByName("RetryerV2"); f.IsValid() {
		if inner, ok := f.Interface().(aws.Retryer); ok {
			return inner
		}
	}
	return r
}
