package scope

import (
	"errors"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// TestCriticality: Decorate puts the value of the property named by
// CRITICALITY_PROPERTY (default criticality) on the repository, lower-cased;
// unknown properties keep what the asset had; another name changes the
// fingerprint; a bad name is refused naming the setting.
func TestCriticality(t *testing.T) {
	r, err := ParseRepository([]byte(`{"id":7,"full_name":"octo-org/pay","custom_properties":{"criticality":"Critical","tier":["Gold","Silver"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var ad finding.AssetDetail
	mustBuild(t, nil).Decorate(&ad, r)
	if got := ad.RepositoryAssetClass.Criticality; got != "critical" {
		t.Errorf("default property: criticality %q, want critical", got)
	}
	(*Filter)(nil).Decorate(&ad, r)
	if got := ad.RepositoryAssetClass.Criticality; got != "critical" {
		t.Errorf("nil filter: criticality %q", got)
	}
	// The event lacks the properties: the asset's stay, and so does the
	// criticality derived from them.
	unknown, _ := ParseRepository([]byte(`{"id":7,"full_name":"octo-org/pay"}`))
	mustBuild(t, nil).Decorate(&ad, unknown)
	if got := ad.RepositoryAssetClass.Criticality; got != "critical" {
		t.Errorf("unknown properties: criticality %q", got)
	}
	tier := mustBuild(t, map[string]string{EnvCriticalityProperty: "tier"})
	tier.Decorate(&ad, r)
	if got := ad.RepositoryAssetClass.Criticality; got != "gold, silver" {
		t.Errorf("CRITICALITY_PROPERTY=tier: criticality %q", got)
	}
	none, _ := ParseRepository([]byte(`{"id":7,"full_name":"octo-org/pay","custom_properties":{}}`))
	mustBuild(t, nil).Decorate(&ad, none)
	if got := ad.RepositoryAssetClass.Criticality; got != "" {
		t.Errorf("no property: criticality %q", got)
	}
	if tier.Fingerprint() == "" || tier.Fingerprint() == mustBuild(t, map[string]string{EnvOwnerProperty: "team"}).Fingerprint() {
		t.Errorf("another CRITICALITY_PROPERTY kept a fingerprint: %q", tier.Fingerprint())
	}
	if mustBuild(t, map[string]string{EnvCriticalityProperty: DefaultCriticalityProperty}).Fingerprint() != "" {
		t.Error("the default CRITICALITY_PROPERTY changed the default fingerprint")
	}
	_, err = build(t, map[string]string{EnvCriticalityProperty: "a=b"})
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Setting != EnvCriticalityProperty || config.ExitCode(err) != 2 {
		t.Errorf("CRITICALITY_PROPERTY=a=b: %v", err)
	}
}
