package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
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
