package mapping

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The objects: list of the Secrets Store CSI driver's AWS provider (ASCP),
// accepted as it is written in a SecretProviderClass so that its users can
// bring their definitions over:
//
//	objectName          -> secret (name or ARN)
//	objectType          -> must be secretsmanager (or absent)
//	objectAlias         -> the file's path (else objectName, "/" -> "_")
//	objectVersion       -> version_id
//	objectVersionLabel  -> stage
//	filePermission      -> mode
//	jmesPath            -> one more file per entry: {path -> key, objectAlias -> path, filePermission -> mode}
//
// As with the provider, the secret's own file is there too when jmesPath
// entries are given. A file without filePermission gets the mount's file
// mode (0400 by default), not the provider's 0644. failoverObject,
// objectTemplate and ssmparameter objects are refused with a message.

var objectFields = []string{"objectName", "objectType", "objectAlias", "objectVersion", "objectVersionLabel", "filePermission", "jmesPath", "failoverObject", "objectTemplate"}

// objects reads an objects: value: a list, or a string holding one (as in a
// SecretProviderClass, objects: |).
func (p *parser) objects(v *yaml.Node, translate string) []File {
	list := v
	if v.Kind == yaml.ScalarNode {
		var doc yaml.Node
		base := v.Line - 1
		if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			base = v.Line
		}
		if _, err := p.decodeYAML([]byte(v.Value), base, &doc); err != nil && !errors.Is(err, io.EOF) {
			p.errs = append(p.errs, err.Error())
			return nil
		}
		if len(doc.Content) == 0 {
			p.errorf(v.Line, "objects", "is empty; give a list of - objectName: ... entries")
			return nil
		}
		list = doc.Content[0]
		shiftLines(list, base)
	}
	if list.Kind != yaml.SequenceNode {
		p.errorf(list.Line, "objects", "must be a list of - objectName: ... entries (or a string holding one)")
		return nil
	}
	var out []File
	for i, o := range list.Content {
		out = append(out, p.object(o, fmt.Sprintf("objects[%d]", i), translate)...)
	}
	return out
}

func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

func (p *parser) object(n *yaml.Node, where, translate string) []File {
	fs, ok := p.fields(n, where, objectFields...)
	if !ok {
		return nil
	}
	before := len(p.errs)
	get := func(name string) (string, *yaml.Node) { return p.field(fs, where, name) }
	f := File{Where: where, Line: n.Line, Source: p.source, Format: FormatRaw}
	name, nn := get("objectName")
	if nn == nil {
		p.errorf(n.Line, where, "objectName is missing; give the secret's name or ARN")
		return nil
	}
	f.Ref.SecretID = p.secretID(name, nn.Line, where+".objectName")
	if t, tn := get("objectType"); tn != nil && t != "secretsmanager" {
		if t == "ssmparameter" {
			p.errorf(tn.Line, where+".objectType", "ssmparameter: secretsfs serves Secrets Manager only; move this parameter to a secret or leave it out")
		} else {
			p.errorf(tn.Line, where+".objectType", "%q is not secretsmanager", t)
		}
	}
	for _, x := range []string{"failoverObject", "objectTemplate"} {
		if v := fs[x]; v != nil {
			hint := "secretsfs reads one region; remove it"
			if x == "objectTemplate" {
				hint = "write a files: entry with template: instead"
			}
			p.errorf(v.Line, where+"."+x, "is not supported: %s", hint)
		}
	}
	alias, an := get("objectAlias")
	if an != nil {
		f.Path = p.path(alias, an.Line, where+".objectAlias")
	} else {
		f.Path = p.path(strings.TrimPrefix(strings.ReplaceAll(name, "/", translate), "/"), nn.Line, where+".objectName")
	}
	vid, vn := get("objectVersion")
	label, ln := get("objectVersionLabel")
	if vn != nil && ln != nil {
		p.errorf(ln.Line, where, "objectVersion and objectVersionLabel are both given; keep one")
	}
	if vn != nil {
		if len(vid) < 32 || len(vid) > 64 {
			p.errorf(vn.Line, where+".objectVersion", "%q is not a version id; give the secret's 32 to 64 character VersionId", vid)
		}
		f.Ref.VersionID = vid
	}
	if ln != nil {
		f.Ref.Stage = label
	}
	if m, mn := get("filePermission"); mn != nil {
		f.Mode = p.mode(m, mn.Line, where+".filePermission")
	}
	out := []File{f}
	if j := fs["jmesPath"]; j != nil {
		if j.Kind != yaml.SequenceNode {
			p.errorf(j.Line, where+".jmesPath", "must be a list of - path: ... objectAlias: ... entries")
			return nil
		}
		for i, e := range j.Content {
			w := fmt.Sprintf("%s.jmesPath[%d]", where, i)
			jf, ok := p.fields(e, w, "path", "objectAlias", "filePermission")
			if !ok {
				continue
			}
			k := File{Where: w, Line: e.Line, Source: p.source, Ref: f.Ref, Format: FormatRaw}
			if v := jf["path"]; v == nil {
				p.errorf(e.Line, w, "path is missing; give the key, e.g. path: username")
			} else if s, ok := p.scalar(v, w+".path"); ok {
				kp, err := parseJMESPath(s)
				if err != nil {
					p.errorf(v.Line, w+".path", "%v", err)
				}
				k.Key = kp
			}
			if v := jf["objectAlias"]; v == nil {
				p.errorf(e.Line, w, "objectAlias is missing; give the file name for this key")
			} else if s, ok := p.scalar(v, w+".objectAlias"); ok {
				k.Path = p.path(s, v.Line, w+".objectAlias")
			}
			if v := jf["filePermission"]; v != nil {
				if s, ok := p.scalar(v, w+".filePermission"); ok {
					k.Mode = p.mode(s, v.Line, w+".filePermission")
				}
			}
			out = append(out, k)
		}
	}
	if len(p.errs) > before {
		return nil
	}
	return out
}

// secretProviderClass takes what secretsfs uses from a whole
// SecretProviderClass document: spec.parameters' objects and region (and
// pathTranslation for names without an alias). Kubernetes-only parameters
// (usePodIdentity, preferredAddressType) are ignored; failoverRegion is
// refused.
func (p *parser) secretProviderClass(root *yaml.Node) (*yaml.Node, error) {
	params := mapGet(mapGet(root, "spec"), "parameters")
	if params == nil || params.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a SecretProviderClass without spec.parameters; give spec.parameters.objects", p.source, root.Line)
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Line: params.Line}
	translate := "_"
	for i := 0; i+1 < len(params.Content); i += 2 {
		k, v := params.Content[i], params.Content[i+1]
		switch k.Value {
		case "objects":
			out.Content = append(out.Content, k, v)
		case "region":
			if v.Value != "" {
				out.Content = append(out.Content, k, v)
			}
		case "pathTranslation":
			switch {
			case v.Value == "False" || v.Value == "false":
				translate = "/"
			case len(v.Value) == 1 && v.Value != "/":
				translate = v.Value
			default:
				p.errorf(v.Line, "pathTranslation", "%q: give one character or \"False\"", v.Value)
			}
		case "failoverRegion":
			p.errorf(k.Line, "failoverRegion", "is not supported: secretsfs reads one region; remove it")
		case "usePodIdentity", "preferredAddressType":
		default:
			p.errorf(k.Line, "spec.parameters", "unknown parameter %q", k.Value)
		}
	}
	if translate != "_" {
		// Rewrite objects: into a list now, with the translation applied.
		for i := 0; i+1 < len(out.Content); i += 2 {
			if out.Content[i].Value == "objects" {
				files := p.objects(out.Content[i+1], translate)
				p.pending = append(p.pending, files...)
				out.Content = append(out.Content[:i], out.Content[i+2:]...)
				break
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(p.errs, "\n"))
	}
	return out, nil
}
