package processor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/imports"
)

// importedKey is the key of a Claude Security finding of the sample on
// the decisions world's repository.
func (e *decEnv) importedKey(rule string) string {
	e.t.Helper()
	for _, d := range e.importedOn(e.repo.ID) {
		if d.Findings[0].RuleID == rule {
			return d.FindingKey
		}
	}
	e.t.Fatalf("no imported finding of rule %s", rule)
	return ""
}

// importedOn are the Claude Security findings of a repository.
func (e *decEnv) importedOn(repoID int64) []finding.Document {
	e.t.Helper()
	lister, err := e.findings.ListKeysFiltered(e.t.Context(), fmt.Sprintf("sast.%d.claude-security.*", repoID))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []finding.Document
	for k := range lister.Keys() {
		d, _ := e.doc(k)
		out = append(out, d)
	}
	return out
}

// scan imports a complete Claude Security scan of the repository at
// scannedAt listing the rules' results.
func (e *decEnv) scan(scannedAt string, rules ...string) {
	e.t.Helper()
	id := e.publishImport(e.repo.FullName, scannedAt, importSARIF(e.t, scannedAt, rules...), "")
	e.waitDrained()
	if st := e.importStatus(id); st.Status != imports.StatusProcessed {
		e.t.Fatalf("scan at %s: %+v", scannedAt, st)
	}
}

// TestDecisionCorrelated: scope correlated reaches every finding of the
// repository with the named finding's correlationKey — GitHub's CodeQL
// alert on GitHub, the Claude Security finding in KV — each by its own
// rules: a reason code scanning does not take fails the alert alone,
// listed in the results; a finding elsewhere is not touched; without the
// scope only the named finding changes.
func TestDecisionCorrelated(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{}))
	alert := e.alert(ghtest.CodeScanning, 1)
	e.waitDrained()
	e.scan("2026-11-21T08:30:00Z", "path-traversal", "missing-authorization")
	claude := e.importedKey("path-traversal")
	other := e.importedKey("missing-authorization")
	ck := e.finding(alert).CorrelationKey
	if ck == "" || e.finding(claude).CorrelationKey != ck {
		t.Fatalf("the alert and the import do not correlate: %q %q", ck, e.finding(claude).CorrelationKey)
	}

	// A Dependabot reason: the imported finding takes it, the alert not.
	st := e.outcome(e.decide("appsec", nil, decisions.Request{FindingKey: claude, Decision: "dismiss", Reason: "tolerable_risk", Scope: "correlated"})[0])
	if st.Status != decisions.StatusFailed || len(st.Results) != 2 || st.Results[0].FindingKey != claude || st.Results[0].Status != decisions.StatusApplied ||
		st.Results[1].FindingKey != alert || st.Results[1].Status != decisions.StatusFailed || !strings.Contains(st.Results[1].Error, "tolerable_risk") {
		t.Errorf("a reason code scanning does not take: %+v", st)
	}
	if f := e.finding(alert); f.FindingStatus != finding.StatusActive || len(e.gh.Updates()) != 0 {
		t.Errorf("the alert changed: %s, %d updates", f.FindingStatus, len(e.gh.Updates()))
	}

	// Without the scope: the named finding alone.
	e.outcome(e.decide("appsec", nil, decisions.Request{FindingKey: claude, Decision: "reopen"})[0])
	if f := e.finding(alert); len(e.gh.Updates()) != 0 || f.Triage != nil {
		t.Errorf("breadth inferred: %d updates, triage %+v", len(e.gh.Updates()), f.Triage)
	}

	// Dismissed together, from GitHub's side.
	st = e.outcome(e.decide("appsec", nil, decisions.Request{FindingKey: alert, Decision: "dismiss", Reason: "false_positive", Comment: "sanitised upstream", Scope: "correlated"})[0])
	if st.Status != decisions.StatusApplied || len(st.Results) != 2 || st.Results[0].AppliedTo != "github" || st.Results[1].AppliedTo != "relay" {
		t.Errorf("correlated dismissal: %+v", st)
	}
	for _, k := range []string{alert, claude} {
		if f := e.finding(k); f.FindingStatus != finding.StatusDismissed || f.Triage == nil || f.Triage.Reason != "false_positive" || f.Triage.DecisionID != st.Decision {
			t.Errorf("%s: %s %+v", k, f.FindingStatus, f.Triage)
		}
	}
	if ups := e.gh.Updates(); len(ups) != 1 || ups[0].Reason != "false positive" || ups[0].Comment != "sanitised upstream" {
		t.Errorf("GitHub updates %+v", ups)
	}
	if f := e.finding(other); f.FindingStatus != finding.StatusActive || f.Triage != nil {
		t.Errorf("a finding of another correlationKey: %s %+v", f.FindingStatus, f.Triage)
	}
}

// TestDecisionBadTargets: a finding the relay does not hold fails the
// decision ("unknown finding"); a finding outside the token's
// repositories fails and is not touched, whatever the receiver knew.
func TestDecisionBadTargets(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{}))
	key := e.alert(ghtest.Dependabot, 1)
	e.waitDrained()
	ids := e.decide("team-web", []string{"octo-org/web-*"},
		decisions.Request{FindingKey: fmt.Sprintf("sca.%d.99", e.repo.ID), Decision: "dismiss", Reason: "inaccurate"},
		decisions.Request{FindingKey: key, Decision: "dismiss", Reason: "inaccurate"})
	if st := e.outcome(ids[0]); st.Status != decisions.StatusFailed || len(st.Results) != 1 || st.Results[0].Error != "unknown finding" {
		t.Errorf("unknown finding: %+v", st)
	}
	if st := e.outcome(ids[1]); st.Status != decisions.StatusFailed || !strings.Contains(st.Results[0].Error, "outside the repositories of token team-web") {
		t.Errorf("outside the token's repositories: %+v", st)
	}
	if f := e.finding(key); f.FindingStatus != finding.StatusActive || f.Triage != nil || len(e.gh.Updates()) != 0 {
		t.Errorf("the finding changed: %s %+v", f.FindingStatus, f.Triage)
	}
}
