package mount

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"testing"

	"github.com/secretsfs/secretsfs/mount/mapping"
)

// TestCheckStatusIsWhatAReaderGets: check's status column is the errno fs
// serves for the same error, and says when a template failed.
func TestCheckStatusIsWhatAReaderGets(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("secret %q: %w", "db", iofs.ErrNotExist), "ENOENT"},
		{fmt.Errorf("secret %q: %w", "db", iofs.ErrPermission), "EACCES"},
		{fmt.Errorf("m.yaml:3: %w", &mapping.TemplateError{}), "EIO (template)"},
		{errors.New("throttled"), "EIO"},
	} {
		if got := checkStatus(ctx, c.err); got != c.want {
			t.Errorf("checkStatus(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got := checkStatus(cancelled, fmt.Errorf("read: %w", cancelled.Err())); got != "EINTR" {
		t.Errorf("an interrupted check: %q, want EINTR", got)
	}
}
