package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// checkTimeout bounds the reads of one mapped file by Check.
const checkTimeout = 30 * time.Second

// Check does everything a mount with cfg.Mapping would do but mount: it
// reads every secret the mapping names and renders every file (so a missing
// secret, stage, version or key, a refused read, a value that does not fit
// its format and a template that fails are all found), prints a table of
// what would be mounted to stdout, and returns one line per problem, each
// naming the mapping file's line. No value is printed.
func Check(ctx context.Context, cfg Config, stdout io.Writer) error {
	if cfg.Mapping == nil {
		return errors.New("check needs --config FILE")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	client, err := cache.NewClient(ctx, cfg.identity(Env{}), cfg.Version)
	if err != nil {
		return err
	}
	c, err := cache.New(client, checkCacheConfig(cfg))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer c.Close()
	st := store{c: c}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSOURCE\tMODE\tOWNER\tSIZE\tSTATUS")
	var problems []string
	for _, f := range mappedFiles(cfg.Mapping, st, cfg) {
		entry := fileOf(cfg.Mapping, f.Path)
		rctx, cancel := context.WithTimeout(ctx, checkTimeout)
		v, err := f.Render(rctx)
		cancel()
		status, size := "ok", fmt.Sprint(len(v.Data))
		clear(v.Data)
		if err != nil {
			status, size = checkStatus(ctx, err), "-"
			problems = append(problems, fmt.Sprintf("%s (%s): %v", entry.At(), f.Path, strings.TrimPrefix(err.Error(), entry.At()+": ")))
		}
		fmt.Fprintf(tw, "%s\t%s\t%04o\t%d:%d\t%s\t%s\n", f.Path, entry.Describe(), uint32(f.Mode.Perm()), f.UID, f.GID, size, status)
	}
	tw.Flush()
	if len(problems) > 0 {
		return fmt.Errorf("%s: %d of %d files have problems:\n%s", cfg.Mapping.Source, len(problems), len(cfg.Mapping.Files), strings.Join(problems, "\n"))
	}
	fmt.Fprintf(stdout, "%s: %d files ok\n", cfg.Mapping.Source, len(cfg.Mapping.Files))
	return nil
}

// checkCacheConfig is the cache's configuration for Check: the daemon's
// (Config.Cache), so that check reads as the mount would, but for background
// refresh, which one pass that exits does not need. Check prints a table, not
// logs, and exports no metrics: no Logger, no Observer.
func checkCacheConfig(cfg Config) cache.Config {
	cc := cfg.Cache(cache.SystemClock(), nil, nil)
	cc.RefreshAhead = 0
	return cc
}

func fileOf(m *mapping.Config, path string) mapping.File {
	for _, f := range m.Files {
		if f.Path == path {
			return f
		}
	}
	return mapping.File{}
}

// checkStatus is the table's short word for a problem: what a reader of the
// mounted file would get (fs.ErrnoOf decides), and why when a template
// failed.
func checkStatus(ctx context.Context, err error) string {
	status := unix.ErrnoName(sfs.ErrnoOf(ctx, err))
	if te := (*mapping.TemplateError)(nil); errors.As(err, &te) {
		status += " (template)"
	}
	return status
}
