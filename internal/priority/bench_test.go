package priority_test

import (
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// BenchmarkScore is the cost of the priority of one document with most
// factors (what the processor adds to every write, besides copying the
// findings slice).
func BenchmarkScore(b *testing.B) {
	pt := defaults(b)
	d := with(sca("HIGH"), func(d *finding.Document, f *finding.Finding) {
		f.FindingType.Vulnerability.CVSS = &finding.CVSS{CVSS3Base: ptr(7.5)}
		f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.62)
		f.Product.DependencyScope, f.Product.DependencyRelationship = "development", "transitive"
		d.AssetDetail.RepositoryAssetClass.Visibility = "public"
		d.AssetDetail.RepositoryAssetClass.Criticality = "critical"
		f.Corroborated = true
	})
	b.ReportAllocs()
	for b.Loop() {
		pt.Apply(d)
	}
}
