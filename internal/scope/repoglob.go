package scope

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Repository name globs, as INCLUDE_REPOS and EXCLUDE_REPOS have them, for
// other settings that name repositories the same way (the import tokens'
// globs).

// RepoGlob checks one owner/name glob and returns it in lower case: a
// malformed pattern, or one without exactly one "/" (a * never matches a
// /, so it could never match an owner/name), is refused.
func RepoGlob(g string) (string, error) {
	g = strings.ToLower(strings.TrimSpace(g))
	if g == "" {
		return "", errors.New("empty pattern")
	}
	if _, err := path.Match(g, ""); err != nil {
		return "", fmt.Errorf("%q is not a valid pattern: %v", g, err)
	}
	if strings.Count(g, "/") != 1 {
		return "", fmt.Errorf("%q does not have the form owner/name (a * never matches a /)", g)
	}
	return g, nil
}

// MatchRepo reports whether the repository fullName (owner/name) matches
// one of globs (from RepoGlob). Names compare case-insensitively, as
// GitHub's do.
func MatchRepo(globs []string, fullName string) bool {
	return matchAny(globs, strings.ToLower(fullName))
}
