package imports

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Headers of a message on ghas.import.<format>: the import's parameters.
const (
	HeaderID         = "Ghas-Import-ID"
	HeaderFormat     = "Ghas-Import-Format"
	HeaderRepository = "Ghas-Import-Repository"
	HeaderTool       = "Ghas-Import-Tool"
	HeaderRef        = "Ghas-Import-Ref"
	HeaderCommit     = "Ghas-Import-Commit"
	HeaderCategory   = "Ghas-Import-Category"
	HeaderScannedAt  = "Ghas-Import-Scanned-At"
	HeaderComplete   = "Ghas-Import-Complete"
	// HeaderOrganization is the SARIF driver's organization, for the
	// attribution of a tool the vendor table does not know.
	HeaderOrganization = "Ghas-Import-Organization"
	// HeaderEncoding "gzip" says the stored body is gzip-compressed (the
	// receiver stores files compressed: JetStream keeps a fraction of the
	// bytes and the receiver never buffers a second copy of a large file).
	HeaderEncoding = "Ghas-Import-Encoding"
	// HeaderBy is the name of the token that posted the import.
	HeaderBy = "Ghas-Import-By"
	// HeaderFromFile lists the scope parameters the request left to the
	// file ("tool", "category", comma-separated): those come from each
	// run of a SARIF log (scans.go); the tool and category the message
	// carries for them are its first scan's. Without it (a message of an
	// older receiver too) the message's tool and category apply to every
	// run.
	HeaderFromFile = "Ghas-Import-From-File"
	// HeaderScans is the number of scans of the import (scans.go); the
	// tool, organization and category headers are its first scan's.
	// Without it, one.
	HeaderScans = "Ghas-Import-Scans"
)

// Params are an import's parameters.
type Params struct {
	Format string
	// Repository is owner/name.
	Repository string
	Tool       string
	// Organization is SARIF's tool.driver.organization (set by the receiver).
	Organization string
	Ref          string
	Commit       string
	Category     string
	// ScannedAt is RFC 3339, UTC, with its fraction ("" in a request: the
	// file's, else the receive time).
	ScannedAt string
	Complete  bool
	// By is the name of the token that posted the import (never the
	// token).
	By string
	// FromFile says which of Tool and Category the request left to the
	// file (they then hold its first scan's).
	FromFile FromFile
	// Scans is the number of scans of the import (0: unknown, one).
	Scans int
}

// RepositoryName turns owner/name or a repository URL
// (https://host/owner/name[.git]) into owner/name.
func RepositoryName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("repository %q: %w", s, err)
		}
		s = strings.Trim(u.Path, "/")
	}
	s = strings.TrimSuffix(s, ".git")
	owner, name, ok := strings.Cut(s, "/")
	if !ok || owner == "" || name == "" || strings.ContainsAny(name, "/ ") || strings.ContainsAny(owner, " ") {
		return "", fmt.Errorf("repository %q: want owner/name or the repository URL", s)
	}
	return owner + "/" + name, nil
}

// ParseQuery reads the query parameters; format is the default format
// (from the content type) when the query names none, received the
// request's receive time (a scanned_at more than 5 minutes after it is
// refused).
func ParseQuery(q url.Values, format string, received time.Time) (Params, error) {
	p := Params{Format: format, Complete: true}
	if f := q.Get("format"); f != "" {
		p.Format = f
	}
	known := false
	for _, f := range Formats() {
		known = known || f == p.Format
	}
	if !known {
		return p, fmt.Errorf("unknown format %q (want sarif, codex-csv or csv)", p.Format)
	}
	if q.Get("repository") == "" {
		return p, fmt.Errorf("parameter repository is required (owner/name or the repository URL)")
	}
	var err error
	if p.Repository, err = RepositoryName(q.Get("repository")); err != nil {
		return p, err
	}
	p.Tool = strings.TrimSpace(q.Get("tool"))
	if p.Format == FormatCSV && p.Tool == "" {
		return p, fmt.Errorf("parameter tool is required for format csv")
	}
	p.Ref, p.Commit, p.Category = q.Get("ref"), q.Get("commit"), q.Get("category")
	if p.Ref != "" && !strings.HasPrefix(p.Ref, "refs/") {
		p.Ref = "refs/heads/" + p.Ref
	}
	if s := q.Get("scanned_at"); s != "" {
		if p.ScannedAt, err = scanTime("parameter scanned_at", s, received); err != nil {
			return p, err
		}
	}
	if s := q.Get("complete"); s != "" {
		if p.Complete, err = strconv.ParseBool(s); err != nil {
			return p, fmt.Errorf("parameter complete: want true or false")
		}
	}
	return p, nil
}

// ID is the content id of an import: the same body and request
// parameters give the same id. It is the import's id when the import is
// the first of its scope (a later one chains on its predecessor: see
// nextID).
func ID(p Params, body []byte) string {
	h := contentHash(p)
	h.Write(body)
	return sumID(h)
}

// contentHash is a hash of the request parameters, ready for the body.
func contentHash(p Params) hash.Hash {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%t\x00", p.Format, strings.ToLower(p.Repository), p.Tool, p.Ref, p.Commit, p.Category, p.ScannedAt, p.Complete)
	return h
}

func sumID(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)[:16]) }

// Message is the JetStream message of an import. p holds the resolved
// parameters (defaults filled).
func Message(id string, p Params, body []byte, receivedAt time.Time) *nats.Msg {
	m := &nats.Msg{Subject: stream.ImportSubject(p.Format), Data: body, Header: nats.Header{}}
	m.Header.Set(stream.HeaderMsgID, "import:"+id)
	m.Header.Set(HeaderID, id)
	m.Header.Set(HeaderFormat, p.Format)
	m.Header.Set(HeaderRepository, p.Repository)
	set := func(k, v string) {
		if v != "" {
			m.Header.Set(k, headerValue(v))
		}
	}
	set(HeaderTool, p.Tool)
	set(HeaderOrganization, p.Organization)
	set(HeaderRef, p.Ref)
	set(HeaderCommit, p.Commit)
	set(HeaderCategory, p.Category)
	set(HeaderScannedAt, p.ScannedAt)
	set(HeaderBy, p.By)
	set(HeaderFromFile, p.FromFile.header())
	if p.Scans > 0 {
		m.Header.Set(HeaderScans, strconv.Itoa(p.Scans))
	}
	m.Header.Set(HeaderComplete, strconv.FormatBool(p.Complete))
	m.Header.Set(stream.HeaderReceivedAt, receivedAt.UTC().Format(time.RFC3339Nano))
	m.Header.Set(stream.HeaderOrigin, stream.OriginImport)
	return m
}

// headerValue keeps a value on one header line.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// FromHeaders reads an import message's parameters.
func FromHeaders(h nats.Header) (id string, p Params) {
	p = Params{
		Format: h.Get(HeaderFormat), Repository: h.Get(HeaderRepository), Tool: h.Get(HeaderTool), Organization: h.Get(HeaderOrganization),
		Ref: h.Get(HeaderRef), Commit: h.Get(HeaderCommit), Category: h.Get(HeaderCategory),
		ScannedAt: h.Get(HeaderScannedAt), Complete: h.Get(HeaderComplete) != "false", By: h.Get(HeaderBy),
		FromFile: fromFileOf(h.Get(HeaderFromFile)),
	}
	p.Scans, _ = strconv.Atoi(h.Get(HeaderScans))
	return h.Get(HeaderID), p
}

func (f FromFile) header() string {
	var out []string
	if f.Tool {
		out = append(out, "tool")
	}
	if f.Category {
		out = append(out, "category")
	}
	return strings.Join(out, ",")
}

func fromFileOf(v string) FromFile {
	var f FromFile
	for _, x := range strings.Split(v, ",") {
		switch strings.TrimSpace(x) {
		case "tool":
			f.Tool = true
		case "category":
			f.Category = true
		}
	}
	return f
}
