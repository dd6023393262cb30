package imports

import (
	"net/url"
	"strings"
)

// Where a SARIF result is, as a path of the repository. A location is an
// artifactLocation: a URI (relative, or absolute with file://), a
// uriBaseId naming an entry of the run's originalUriBaseIds (whose URIs
// may themselves be relative to another base), or an index into the run's
// artifacts. The repository's root is the base an entry chain ends on
// (absolute, or without a URI): a path is what lies below it. A path no
// base makes relative stays absolute — /home/u/x, C:/x, //host/x — never
// passed off as a path of the repository; a URI of another scheme (https:)
// is no path. links.go's repoRelative cleans what this returns.

// maxBaseDepth bounds a chain of uriBaseIds (a cycle ends there).
const maxBaseDepth = 16

// location is the artifact location a result's locations[0] gives, its
// uri and base filled from runs[].artifacts[index] when it has no uri of
// its own.
func (rs *runState) location(al sarifArtifactLocation) (uri, baseID string) {
	uri, baseID = al.URI, al.URIBaseID
	if al.Index.ok && al.Index.n < len(rs.artifacts) {
		a := rs.artifacts[al.Index.n]
		if uri == "" {
			uri, baseID = a.URI, a.URIBaseID
		} else if baseID == "" && a.URI == uri {
			baseID = a.URIBaseID
		}
	}
	return uri, baseID
}

// resolveBase follows a uriBaseId: abs is the absolute URI the chain ends
// on ("" when it ends on a base without a URI, or an unknown one), rel the
// relative URIs the chain adds below it (each ending in /).
func (rs *runState) resolveBase(id string) (abs, rel string) {
	for depth := 0; id != "" && depth < maxBaseDepth; depth++ {
		b, ok := rs.bases[id]
		if !ok || b.uri == "" {
			return "", rel
		}
		u := withSlash(b.uri)
		if isAbsoluteURI(u) || isAbsPath(backslashes(u)) {
			return u, rel
		}
		rel = u + rel
		id = b.baseID
	}
	return "", rel
}

func withSlash(s string) string {
	if !strings.HasSuffix(s, "/") {
		return s + "/"
	}
	return s
}

// sarifPath is the path of an artifact location: repository-relative when
// it lies below the root (see above), else absolute; "" when it is no
// path.
func (rs *runState) sarifPath(uri, baseID string) string {
	uri = backslashes(strings.TrimSpace(uri))
	if uri == "" {
		return ""
	}
	var p string
	switch {
	case isAbsoluteURI(uri):
		var ok bool
		if p, ok = filePath(uri); !ok {
			return "" // https:, git: … name no file of the repository
		}
	case baseID != "" && !isAbsPath(uri):
		// Below the root, by the relative bases of the chain; a base the
		// run does not describe (%SRCROOT% alone) is the root.
		_, rel := rs.resolveBase(baseID)
		return unescape(rel + uri)
	default:
		p = unescape(uri)
	}
	if !isAbsPath(p) {
		return p
	}
	// An absolute path below a root the run describes is cut below it
	// (the deepest root, when roots nest).
	best := ""
	for id := range rs.bases {
		abs, _ := rs.resolveBase(id)
		if abs == "" {
			continue
		}
		bp := abs
		if isAbsoluteURI(abs) {
			var ok bool
			if bp, ok = filePath(abs); !ok {
				continue
			}
		} else {
			bp = unescape(abs)
		}
		bp = withSlash(bp)
		if len(bp) > len(best) && hasPathPrefix(p, bp) {
			best = bp
		}
	}
	return p[len(best):]
}

func backslashes(s string) string { return strings.ReplaceAll(s, `\`, "/") }

// isAbsoluteURI: s starts with a scheme (two letters or more, so that a
// drive letter is no scheme).
func isAbsoluteURI(s string) bool {
	i := strings.IndexByte(s, ':')
	if i < 2 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// isAbsPath: a path from a root — /x, //host/x, or a drive letter (C:/x,
// C:x).
func isAbsPath(p string) bool {
	return strings.HasPrefix(p, "/") || hasDrive(p)
}

func hasDrive(p string) bool {
	return len(p) >= 2 && p[1] == ':' && (p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z')
}

// hasPathPrefix: p lies below the directory dir (ending in /); a drive
// letter compares without case, as Windows does.
func hasPathPrefix(p, dir string) bool {
	if len(p) < len(dir) {
		return false
	}
	if hasDrive(dir) {
		return strings.EqualFold(p[:len(dir)], dir)
	}
	return p[:len(dir)] == dir
}

// filePath is the path of a file: URI (file:///C:/x → C:/x,
// file:///home/x → /home/x, file://host/x → //host/x); ok is false for
// another scheme.
func filePath(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil {
		// Not a URI net/url reads (a stray %): its path as written.
		if !strings.HasPrefix(strings.ToLower(uri), "file:") {
			return "", false
		}
		rest := uri[len("file:"):]
		if strings.HasPrefix(rest, "//") {
			rest = rest[2:]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rest = rest[i:] // the authority is dropped
			}
		}
		return trimDriveSlash(rest), true
	}
	if !strings.EqualFold(u.Scheme, "file") {
		return "", false
	}
	if u.Opaque != "" {
		return unescape(u.Opaque), true
	}
	p := trimDriveSlash(u.Path)
	if h := u.Host; h != "" && !strings.EqualFold(h, "localhost") {
		return "//" + h + p, true
	}
	return p, true
}

// trimDriveSlash turns /C:/x into C:/x.
func trimDriveSlash(p string) string {
	if len(p) >= 3 && p[0] == '/' && hasDrive(p[1:]) {
		return p[1:]
	}
	return p
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// identityPath is the path form the identity of a result without
// fingerprints has always hashed (a base's prefix, file:// and the host,
// leading ./ and / removed, escapes decoded): kept so that a re-import
// gives such findings the ids they had.
func identityPath(uri, baseID string, bases map[string]sarifBase) string {
	if uri == "" {
		return ""
	}
	if base := bases[baseID].uri; base != "" && strings.HasPrefix(uri, base) {
		uri = strings.TrimPrefix(uri, base)
	}
	for _, b := range bases {
		if base := b.uri; base != "" && strings.HasPrefix(base, "file:") && strings.HasPrefix(uri, base) {
			uri = strings.TrimPrefix(uri, base)
		}
	}
	if strings.HasPrefix(uri, "file://") {
		uri = strings.TrimPrefix(uri, "file://")
		if i := strings.IndexByte(uri, '/'); i > 0 {
			uri = uri[i:] // file://host/path
		}
	}
	uri = unescape(uri)
	for strings.HasPrefix(uri, "./") {
		uri = uri[2:]
	}
	return strings.TrimLeft(uri, "/")
}
