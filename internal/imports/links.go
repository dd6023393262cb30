package imports

import (
	"net/url"
	"path"
	"strings"
)

// Imported text is data and links are links: what a file says is kept as
// text, but a URL it gives is kept only when a browser would open it as a
// web page, and a location path only when it stays inside the repository.
// Consumers render both (a finding's link, a blob URL built from the
// path); neither may become a script, a local file or a path outside the
// repository.

// webURL is s when it is an absolute http or https URL with a host, else
// "" (javascript:, data:, file:, a relative or scheme-less reference, and
// anything net/url cannot parse are dropped).
func webURL(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return s
	}
	return ""
}

// webURLs keeps the web URLs of list (nil when none is left).
func webURLs(list []string) []string {
	var out []string
	for _, s := range list {
		if s = webURL(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// repoRelative is a location path cleaned (path.Clean, with \ read as /):
// a relative one is "" when it is empty or climbs out of the repository
// (its first element after cleaning is ..); an absolute one (/x, //host/x,
// C:/x) stays absolute — it names no file of the repository, and is not
// made to — with .. at its root dropped, as the file system does.
func repoRelative(p string) string {
	p = strings.ReplaceAll(strings.TrimSpace(p), `\`, "/")
	switch {
	case p == "":
		return ""
	case hasDrive(p):
		return p[:2] + path.Clean("/"+p[2:])
	case strings.HasPrefix(p, "//"):
		if c := path.Clean(p[1:]); c != "/" {
			return "/" + c
		}
		return "/"
	case strings.HasPrefix(p, "/"):
		return path.Clean(p)
	}
	p = path.Clean(p)
	if p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return ""
	}
	return p
}
