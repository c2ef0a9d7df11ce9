package mount

import (
	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount/catalog"
)

// catalogOf picks the catalog's mode from the configuration: with a mapping
// (and no --expose-all) only the mapped files, so an explicit catalog of no
// secret; with --secret the named secrets; otherwise a listing narrowed by
// --prefix and --tag. The cache lists, so that each listing updates what it
// holds.
func catalogOf(cfg Config, c *cache.Cache, opts catalog.Options) catalog.Catalog {
	switch {
	case cfg.Mapping != nil && !cfg.ExposeAll:
		return catalog.NewExplicit(nil, c, opts)
	case cfg.ExplicitMode():
		return catalog.NewExplicit(cfg.Secrets, c, opts)
	}
	return catalog.NewListing(c, c, cfg.Prefixes, cfg.Tags, opts)
}

// watchedIDs are the secrets a Watcher keeps up to date: in explicit mode
// the named secrets and the mapped files' secrets (a listing does that job
// in listing mode).
func watchedIDs(cfg Config) []string {
	var ids []string
	switch {
	case cfg.Mapping != nil && !cfg.ExposeAll:
	case cfg.ExplicitMode():
		ids = append(ids, cfg.Secrets...)
	default:
		return nil
	}
	if cfg.Mapping != nil {
		for _, f := range cfg.Mapping.Files {
			ids = append(ids, f.SecretIDs()...)
		}
	}
	return ids
}
