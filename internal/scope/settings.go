// Package scope owns the one decision of which findings ghas-relay keeps —
// the repository, type and severity filters (INCLUDE_REPOS, EXCLUDE_REPOS,
// INCLUDE_TYPES, MIN_SEVERITY, EXCLUDE_ARCHIVED, EXCLUDE_FORKS,
// INCLUDE_PROPERTIES) — and the asset fields derived from the same
// repository facts: ownership (OWNER_PROPERTY, BUSINESS_ENTITY_PROPERTY),
// tags, custom properties and criticality (CRITICALITY_PROPERTY). The processor and the reconciler both decide
// through a *Filter built from the same settings; it is pure (no I/O, no
// clock) and safe for concurrent use. A nil *Filter keeps everything and
// uses the default property names.
package scope

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Setting names (environment variables; the flags are their lower-case,
// dash-separated forms).
const (
	EnvIncludeRepos           = "INCLUDE_REPOS"
	EnvExcludeRepos           = "EXCLUDE_REPOS"
	EnvIncludeTypes           = "INCLUDE_TYPES"
	EnvMinSeverity            = "MIN_SEVERITY"
	EnvExcludeArchived        = "EXCLUDE_ARCHIVED"
	EnvExcludeForks           = "EXCLUDE_FORKS"
	EnvIncludeProperties      = "INCLUDE_PROPERTIES"
	EnvOwnerProperty          = "OWNER_PROPERTY"
	EnvBusinessEntityProperty = "BUSINESS_ENTITY_PROPERTY"
	EnvCriticalityProperty    = "CRITICALITY_PROPERTY"
)

// Default custom property names of an asset's owner, business entity and
// criticality.
const (
	DefaultOwnerProperty          = "owner"
	DefaultBusinessEntityProperty = "business_unit"
	DefaultCriticalityProperty    = "criticality"
)

// Settings are the scope settings as given on the command line or in the
// environment, before validation.
type Settings struct {
	IncludeRepos           string
	ExcludeRepos           string
	IncludeTypes           string
	MinSeverity            string
	ExcludeArchived        string
	ExcludeForks           string
	IncludeProperties      string
	OwnerProperty          string
	BusinessEntityProperty string
	CriticalityProperty    string
}

// Register defines the scope settings on s: the processor and the
// reconciler register the same ones and must be given the same values.
func (st *Settings) Register(s *config.Set) {
	s.String(&st.IncludeRepos, EnvIncludeRepos, "", "comma-separated path.Match globs on owner/name of the repositories in scope (empty: all)")
	s.String(&st.ExcludeRepos, EnvExcludeRepos, "", "comma-separated path.Match globs on owner/name of repositories left out (wins over INCLUDE_REPOS)")
	s.String(&st.IncludeTypes, EnvIncludeTypes, "", "comma-separated finding types in scope: sast, sca, secret (empty: all three)")
	s.String(&st.MinSeverity, EnvMinSeverity, finding.SeverityInfo, "lowest severity in scope: INFO, LOW, MEDIUM, HIGH or CRITICAL")
	s.String(&st.ExcludeArchived, EnvExcludeArchived, "false", "true leaves archived repositories out of scope")
	s.String(&st.ExcludeForks, EnvExcludeForks, "false", "true leaves forked repositories out of scope")
	s.String(&st.IncludeProperties, EnvIncludeProperties, "", "comma-separated name=value custom property conditions, all must hold (a multi-select property holds if any value equals)")
	s.String(&st.OwnerProperty, EnvOwnerProperty, DefaultOwnerProperty, "custom property giving an asset's owner")
	s.String(&st.BusinessEntityProperty, EnvBusinessEntityProperty, DefaultBusinessEntityProperty, "custom property giving an asset's business entity")
	s.String(&st.CriticalityProperty, EnvCriticalityProperty, DefaultCriticalityProperty, "custom property giving an asset's criticality (a priority input; values critical, high, medium, low in the default table)")
}

// Flags registers the scope settings on s and returns a function that
// validates them once s was parsed: the binaries' one-line hook.
func Flags(s *config.Set) func() (*Filter, error) {
	st := &Settings{}
	st.Register(s)
	return func() (*Filter, error) { return st.Filter() }
}

// Filter validates the settings. An invalid setting is a *config.Error
// naming it.
func (st Settings) Filter() (*Filter, error) {
	f := &Filter{
		ownerProp:    strings.TrimSpace(st.OwnerProperty),
		businessProp: strings.TrimSpace(st.BusinessEntityProperty),
		critProp:     strings.TrimSpace(st.CriticalityProperty),
	}
	var err error
	if f.include, err = parseGlobs(EnvIncludeRepos, st.IncludeRepos); err != nil {
		return nil, err
	}
	if f.exclude, err = parseGlobs(EnvExcludeRepos, st.ExcludeRepos); err != nil {
		return nil, err
	}
	if f.types, err = parseTypes(st.IncludeTypes); err != nil {
		return nil, err
	}
	if st.MinSeverity != "" {
		r := severityRank(strings.ToUpper(strings.TrimSpace(st.MinSeverity)))
		if r < 0 {
			return nil, &config.Error{Setting: EnvMinSeverity, Msg: fmt.Sprintf("%q is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL", st.MinSeverity)}
		}
		f.minSeverity = r
	}
	if f.excludeArchived, err = parseBool(EnvExcludeArchived, st.ExcludeArchived); err != nil {
		return nil, err
	}
	if f.excludeForks, err = parseBool(EnvExcludeForks, st.ExcludeForks); err != nil {
		return nil, err
	}
	if f.props, err = parseConditions(st.IncludeProperties); err != nil {
		return nil, err
	}
	for _, p := range []struct{ env, v string }{{EnvOwnerProperty, f.ownerProp}, {EnvBusinessEntityProperty, f.businessProp}, {EnvCriticalityProperty, f.critProp}} {
		if strings.ContainsAny(p.v, ",=") {
			return nil, &config.Error{Setting: p.env, Msg: fmt.Sprintf("%q is not a property name", p.v)}
		}
	}
	f.fp = f.fingerprint()
	return f, nil
}

// parseGlobs splits a comma-separated list of owner/name globs and checks
// each: a malformed pattern, or one without a "/" (which could never match
// an owner/name), is refused.
func parseGlobs(env, v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for _, g := range strings.Split(v, ",") {
		if strings.TrimSpace(g) == "" {
			return nil, &config.Error{Setting: env, Msg: "empty pattern in the list"}
		}
		g, err := RepoGlob(g)
		if err != nil {
			return nil, &config.Error{Setting: env, Msg: err.Error()}
		}
		out = append(out, g)
	}
	return out, nil
}

// parseTypes parses INCLUDE_TYPES; nil means all three.
func parseTypes(v string) (map[string]bool, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	types := map[string]bool{}
	for _, t := range strings.Split(v, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		switch t {
		case finding.SAST, finding.SCA, finding.Secret:
			types[t] = true
		default:
			return nil, &config.Error{Setting: EnvIncludeTypes, Msg: fmt.Sprintf("%q is not one of sast, sca, secret", t)}
		}
	}
	return types, nil
}

func parseBool(env, v string) (bool, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &config.Error{Setting: env, Msg: fmt.Sprintf("%q is not true or false", v)}
	}
	return b, nil
}

// condition is one name=value of INCLUDE_PROPERTIES.
type condition struct {
	name, value string
}

// parseConditions parses INCLUDE_PROPERTIES: comma-separated name=value,
// both non-empty.
func parseConditions(v string) ([]condition, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []condition
	for _, c := range strings.Split(v, ",") {
		name, value, ok := strings.Cut(c, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, &config.Error{Setting: EnvIncludeProperties, Msg: fmt.Sprintf("%q is not name=value", strings.TrimSpace(c))}
		}
		out = append(out, condition{name: name, value: value})
	}
	return out, nil
}

// severityRank orders severities: INFO 0 … CRITICAL 4; -1 for anything else.
func severityRank(s string) int {
	switch s {
	case finding.SeverityInfo:
		return 0
	case finding.SeverityLow:
		return 1
	case finding.SeverityMedium:
		return 2
	case finding.SeverityHigh:
		return 3
	case finding.SeverityCritical:
		return 4
	}
	return -1
}
