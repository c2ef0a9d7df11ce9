package csi

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// The volume attributes a pod gives (spec.volumes[].csi.volumeAttributes).
const (
	attrSecrets         = "secrets"         // explicit secret ids, comma or newline separated
	attrPrefix          = "prefix"          // listing mode: name prefixes, comma separated
	attrTags            = "tags"            // listing mode: KEY=VALUE, comma separated
	attrMapping         = "mapping"         // an inline mapping document (files: or objects:)
	attrRegion          = "region"          // the AWS region; else the driver's --region
	attrRoleARN         = "roleArn"         // IRSA's role; absent: EKS Pod Identity
	attrMode            = "mode"            // per-open (default) or kernel-cache
	attrFileMode        = "fileMode"        // octal
	attrDirMode         = "dirMode"         // octal
	attrRefreshInterval = "refreshInterval" // a duration
	attrMaxStale        = "maxStale"        // a duration; 0 or absent: no bound
)

// attributes lists the volume attributes, for messages.
func attributes() []string {
	return []string{attrSecrets, attrPrefix, attrTags, attrMapping, attrRegion, attrRoleARN, attrMode,
		attrFileMode, attrDirMode, attrRefreshInterval, attrMaxStale}
}

// What kubelet adds to the volume context (podInfoOnMount, tokenRequests,
// ephemeral volumes).
const (
	kubePrefix         = "csi.storage.k8s.io/"
	keyEphemeral       = kubePrefix + "ephemeral"
	keyTokens          = kubePrefix + "serviceAccount.tokens"
	keyServiceAccount  = kubePrefix + "serviceAccount.name"
	keyPodNamespace    = kubePrefix + "pod.namespace"
	keyPodName         = kubePrefix + "pod.name"
	keyPodUID          = kubePrefix + "pod.uid"
	volumeMountGroup   = "volume_capability.mount.volume_mount_group"
	targetPathField    = "target_path"
	volumeIDField      = "volume_id"
	volumeCapabilities = "volume_capability"
)

// The files' modes when the volume gives none: readable by the pod's
// fsGroup when kubelet gives one (volume_mount_group), else by everyone:
// the pod's user is not known to the driver, and the mount is reachable
// only through the pod's own volume (kubelet's pod directory is root's).
const (
	groupFileMode os.FileMode = 0o440
	groupDirMode  os.FileMode = 0o550
	otherFileMode os.FileMode = 0o444
	otherDirMode  os.FileMode = 0o555
)

// Serving modes (attribute mode).
const (
	modePerOpen     = "per-open"
	modeKernelCache = "kernel-cache"
)

// fsName is the source of every volume's mount in /proc/mounts.
const fsName = DriverName

// request is a NodePublishVolume request read and checked.
type request struct {
	volumeID, target string
	cfg              mount.Config
	key              identityKey
	tokens           tokens
	pod              string // namespace/name, for logs
}

// badRequest collects the problems of a request, each naming its field.
type badRequest struct{ problems []string }

func (b *badRequest) add(field, format string, args ...any) {
	b.problems = append(b.problems, field+": "+fmt.Sprintf(format, args...))
}

func (b *badRequest) err() error {
	if len(b.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(b.problems, "; "))
}

// driverDefaults are the driver's settings that every volume takes.
type driverDefaults struct {
	region, endpointURL, stsEndpoint, agentURL, version string
}

// readPublish checks a NodePublishVolume request and turns it into the
// volume's mount configuration, identity and tokens. Its error lists every
// problem, each naming the request field or volume attribute and the fix;
// expired reports a token that has expired (UNAUTHENTICATED rather than
// INVALID_ARGUMENT).
func readPublish(req *csi.NodePublishVolumeRequest, def driverDefaults, now time.Time) (r request, expired, err error) {
	var b badRequest
	r.volumeID, r.target = req.GetVolumeId(), req.GetTargetPath()
	if r.volumeID == "" {
		b.add(volumeIDField, "missing; kubelet gives the volume's id")
	}
	checkTarget(&b, r.target)
	gid, group := readCapability(&b, req.GetVolumeCapability())
	if len(b.problems) > 0 {
		return r, nil, b.err() // nothing else is worth checking
	}
	vc := req.GetVolumeContext()
	if vc[keyEphemeral] != "true" {
		b.add(keyEphemeral, "is %q; secretsfs serves ephemeral inline volumes only: give the volume in the pod's spec.volumes[].csi, and volumeLifecycleModes: [Ephemeral] in the CSIDriver", vc[keyEphemeral])
		return r, nil, b.err()
	}
	for _, k := range slices.Sorted(maps.Keys(vc)) {
		if !strings.HasPrefix(k, kubePrefix) && !slices.Contains(attributes(), k) {
			b.add(k, "unknown volume attribute; give %s", strings.Join(attributes(), ", "))
		}
	}

	cfg := mount.DefaultConfig()
	cfg.MountPoint = r.target
	cfg.Version = def.version
	cfg.EndpointURL = def.endpointURL
	cfg.UID, cfg.GID = 0, gid
	cfg.FileMode, cfg.DirMode = otherFileMode, otherDirMode
	if group {
		cfg.FileMode, cfg.DirMode = groupFileMode, groupDirMode
	}
	cfg.AllowOther = true // the pod's processes are not the driver's user
	cfg.FsName = fsName
	cfg.Region = def.region
	if v, ok := vc[attrRegion]; ok {
		cfg.Region = v
	}
	if cfg.Region == "" {
		b.add(attrRegion, "missing; give the AWS region of the secrets, e.g. us-east-1 (or start the driver with --region)")
	}
	cfg.RoleARN = vc[attrRoleARN]
	readSelection(&b, vc, &cfg)
	readSettings(&b, vc, &cfg)
	if err := cfg.Validate(); err != nil {
		for _, p := range attributeProblems(err) {
			b.problems = append(b.problems, p)
		}
	}

	// Who: the pod's service account and its token.
	ns, sa := vc[keyPodNamespace], vc[keyServiceAccount]
	for _, k := range []string{keyPodNamespace, keyServiceAccount} {
		if vc[k] == "" {
			b.add(k, "missing; the CSIDriver must have podInfoOnMount: true")
		}
	}
	r.pod = ns + "/" + vc[keyPodName]
	r.key = identityKey{Namespace: ns, ServiceAccount: sa, Role: cfg.RoleARN, Region: cfg.Region}
	if cfg.RoleARN == "" {
		r.key.Role = podIdentityRole
	}
	expired = readTokens(&b, vc[keyTokens], r.key, now, &r.tokens)
	cfg.Workload = cache.Workload{Namespace: ns, ServiceAccount: sa, STSEndpoint: def.stsEndpoint, AgentURL: def.agentURL}
	r.cfg = cfg
	if expired != nil && len(b.problems) == 0 {
		return r, expired, nil
	}
	return r, nil, b.err()
}

// checkTarget checks the target path kubelet gives.
func checkTarget(b *badRequest, target string) {
	switch {
	case target == "":
		b.add(targetPathField, "missing; kubelet gives the directory to mount on")
	case !filepath.IsAbs(target) || filepath.Clean(target) != target:
		b.add(targetPathField, "%q is not a clean absolute path", target)
	}
}

// readCapability checks the volume capability: a filesystem (mount access
// type); any access mode, the mount being read-only whatever the mode. It
// returns the group of the pod's fsGroup, if kubelet gives one.
func readCapability(b *badRequest, c *csi.VolumeCapability) (gid uint32, group bool) {
	switch {
	case c == nil:
		b.add(volumeCapabilities, "missing; give a mount access type")
		return 0, false
	case c.GetBlock() != nil:
		b.add(volumeCapabilities, "block access is not supported: secretsfs is a filesystem; use a mount access type")
		return 0, false
	case c.GetMount() == nil:
		b.add(volumeCapabilities, "no access type; give a mount access type")
		return 0, false
	}
	g := c.GetMount().GetVolumeMountGroup()
	if g == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		b.add(volumeMountGroup, "%q is not a numeric group id; give the pod's fsGroup, e.g. 1000", g)
		return 0, false
	}
	return uint32(n), true
}

// readSelection reads which secrets the volume shows: secrets, prefix and
// tags, or mapping.
func readSelection(b *badRequest, vc map[string]string, cfg *mount.Config) {
	cfg.Secrets = split(vc[attrSecrets], ",\n")
	cfg.Prefixes = split(vc[attrPrefix], ",")
	for _, s := range split(vc[attrTags], ",") {
		t, err := mount.ParseTag(s)
		if err != nil {
			b.add(attrTags, "%v", err)
			continue
		}
		cfg.Tags = append(cfg.Tags, t)
	}
	if len(cfg.Secrets) > 0 && (len(cfg.Prefixes) > 0 || len(cfg.Tags) > 0) {
		b.add(attrSecrets, "shows only the named secrets, while prefix and tags narrow a listing; give one or the other")
		cfg.Prefixes, cfg.Tags = nil, nil // reported once
	}
	doc, ok := vc[attrMapping]
	if !ok {
		return
	}
	if len(cfg.Secrets) > 0 || len(cfg.Prefixes) > 0 || len(cfg.Tags) > 0 {
		b.add(attrMapping, "shows only its files; give secrets, prefix and tags without mapping, or name the secrets in the mapping")
	}
	m, err := mapping.ParseInline(attrMapping, []byte(doc))
	if err != nil {
		// One problem per line, each "mapping:LINE: FIELD: ...".
		for _, line := range strings.Split(err.Error(), "\n") {
			b.problems = append(b.problems, line)
		}
		return
	}
	cfg.Mapping = m
}

// readSettings reads the serving mode, the files' modes and the
// intervals.
func readSettings(b *badRequest, vc map[string]string, cfg *mount.Config) {
	switch v, ok := vc[attrMode]; {
	case !ok || v == modePerOpen:
	case v == modeKernelCache:
		cfg.KernelCache = true
	default:
		b.add(attrMode, "is %q; give %s (the default: each open reads the current value) or %s (faster: reads served from the kernel's page cache)", v, modePerOpen, modeKernelCache)
	}
	readAttr(b, vc, attrFileMode, &cfg.FileMode, mount.ParseMode)
	readAttr(b, vc, attrDirMode, &cfg.DirMode, mount.ParseMode)
	readAttr(b, vc, attrRefreshInterval, &cfg.RefreshInterval, parseDuration)
	readAttr(b, vc, attrMaxStale, &cfg.MaxStale, parseDuration)
}

// readAttr parses attribute attr into *dst when the volume gives it.
func readAttr[T any](b *badRequest, vc map[string]string, attr string, dst *T, parse func(string) (T, error)) {
	v, ok := vc[attr]
	if !ok {
		return
	}
	x, err := parse(v)
	if err != nil {
		b.add(attr, "%v", err)
		return
	}
	*dst = x
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; give e.g. 5m or 1h30m", s)
	}
	return d, nil
}

// readTokens reads the pod's tokens and checks the one the identity needs:
// present, for the pod's service account, unexpired. A missing or wrong
// token is a problem of b; an expired one is returned.
func readTokens(b *badRequest, s string, key identityKey, now time.Time, out *tokens) (expired error) {
	aud := key.audience()
	how := "roleArn given: IRSA"
	if key.Role == podIdentityRole {
		how = "no roleArn: EKS Pod Identity"
	}
	if s == "" {
		b.add(keyTokens, "missing; the CSIDriver must request a token for audience %s (tokenRequests; %s)", aud, how)
		return nil
	}
	ts, err := parseTokens(s)
	if err != nil {
		b.add(keyTokens, "%v", err)
		return nil
	}
	t, ok := ts[aud]
	if !ok {
		b.add(keyTokens, "no token for audience %s (%s); add it to the CSIDriver's tokenRequests", aud, how)
		return nil
	}
	if key.Namespace != "" && key.ServiceAccount != "" {
		if err := checkSubject(t.value, subject(key.Namespace, key.ServiceAccount)); err != nil {
			b.add(keyTokens, "the %s token %v", aud, err)
			return nil
		}
	}
	*out = ts
	if !now.Before(t.expires) {
		return fmt.Errorf("%s: the %s token of service account %s/%s expired at %s; kubelet sends a fresh one on the next publish",
			keyTokens, aud, key.Namespace, key.ServiceAccount, t.expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// attributeProblems words mount.Config's problems with the volume's
// attributes instead of the mount command's flags.
func attributeProblems(err error) []string {
	names := strings.NewReplacer(
		"--secret", attrSecrets,
		"--prefix", attrPrefix,
		"--tag", attrTags,
		"--region", attrRegion,
		"--role-arn", attrRoleARN,
		"--kernel-cache", attrMode+": "+modeKernelCache,
		"--file-mode", attrFileMode,
		"--dir-mode", attrDirMode,
		"--refresh-interval", attrRefreshInterval,
		"--max-stale", attrMaxStale,
		"MOUNTPOINT", targetPathField,
	)
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		var fe *mount.FieldError
		if errors.As(e, &fe) {
			out = append(out, names.Replace(fe.Flag)+": "+names.Replace(fe.Problem))
			continue
		}
		out = append(out, names.Replace(e.Error()))
	}
	return out
}

// split splits s at any of seps, trimming spaces and dropping empty
// elements.
func split(s, seps string) []string {
	var out []string
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
