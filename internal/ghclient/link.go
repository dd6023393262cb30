package ghclient

import (
	"net/http"
	"strings"
)

// nextLink returns the rel="next" URL of the Link headers, and whether the
// response had a Link header at all.
func nextLink(h http.Header) (string, bool) {
	values := h.Values("Link")
	for _, v := range values {
		if u := ParseLink(v)["next"]; u != "" {
			return u, true
		}
	}
	return "", len(values) > 0
}

// ParseLink parses an RFC 8288 Link header value as GitHub writes it
// (`<url>; rel="next", <url>; rel="last"`) into a map from relation to URL.
// Unparseable parts are skipped; a part with several relations
// (rel="next last") is recorded under each.
func ParseLink(v string) map[string]string {
	out := map[string]string{}
	for len(v) > 0 {
		v = strings.TrimLeft(v, " \t,")
		if !strings.HasPrefix(v, "<") {
			// skip to the next link
			i := strings.Index(v, ",")
			if i < 0 {
				break
			}
			v = v[i+1:]
			continue
		}
		end := strings.IndexByte(v, '>')
		if end < 0 {
			break
		}
		target := v[1:end]
		v = v[end+1:]
		// parameters up to the next link ("," outside quotes)
		params, rest := splitParams(v)
		v = rest
		for _, p := range params {
			name, val, ok := strings.Cut(p, "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
				continue
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			for _, rel := range strings.Fields(val) {
				rel = strings.ToLower(rel)
				if _, dup := out[rel]; !dup {
					out[rel] = target
				}
			}
		}
	}
	return out
}

// splitParams splits the ";"-separated parameters after a link target, up to
// the "," that starts the next link, honouring quoted strings.
func splitParams(v string) (params []string, rest string) {
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			cur.WriteByte(c)
		case c == ';' && !inQuote:
			if s := strings.TrimSpace(cur.String()); s != "" {
				params = append(params, s)
			}
			cur.Reset()
		case c == ',' && !inQuote:
			if s := strings.TrimSpace(cur.String()); s != "" {
				params = append(params, s)
			}
			return params, v[i+1:]
		default:
			cur.WriteByte(c)
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		params = append(params, s)
	}
	return params, ""
}
