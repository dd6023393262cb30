package finding_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// A finding key names one alert of one repository, whatever route (webhook,
// reconciler, recovered delivery) brought it.
func ExampleKey() {
	key := finding.Key(finding.SAST, 1296269, 42)
	fmt.Println(key)

	dataset, repositoryID, number, err := finding.ParseKey(key)
	fmt.Println(dataset, repositoryID, number, err)
	// Output:
	// sast.1296269.42
	// sast 1296269 42 <nil>
}

// Encode gives the stored JSON and the content hash in one go. The hash
// leaves out origin and observedAt, so the same finding seen again by
// another route is not a change; a new status is.
func ExampleDocument_Encode() {
	seen := "2026-11-21T09:00:00Z"
	d := finding.Document{
		SchemaVersion:   finding.SchemaVersion,
		FindingKey:      finding.Key(finding.SAST, 1296269, 42),
		FindingTypeName: finding.TypeSAST,
		VendorName:      "GitHub",
		Origin:          "webhook",
		ObservedAt:      "2026-11-21T10:00:00Z",
		ExternalAssetID: "https://github.com/octo-org/octo-repo",
		VendorAssetID:   "1296269",
		Findings: []finding.Finding{{
			ExternalFindingID: "42",
			FindingStatus:     finding.StatusActive,
			Severity:          finding.SeverityHigh,
			FirstFoundOn:      &seen,
			LastFoundOn:       &seen,
		}},
	}
	data, hash, err := d.Encode()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(data))
	fmt.Println(hash == d.ContentHash())

	again := d
	again.Origin, again.ObservedAt = "reconcile", "2026-11-22T02:00:00Z"
	fmt.Println("same content:", again.ContentHash() == hash)

	fixed := d
	fixed.Findings = []finding.Finding{d.Findings[0]}
	fixed.Findings[0].FindingStatus = finding.StatusFixed
	fmt.Println("same content:", fixed.ContentHash() == hash)
	// Output:
	// {"schemaVersion":1,"findingKey":"sast.1296269.42","findingTypeName":"APPLICATION_SAST","vendorName":"GitHub","vendorProductName":"","source":"","origin":"webhook","observedAt":"2026-11-21T10:00:00Z","externalAssetId":"https://github.com/octo-org/octo-repo","vendorAssetId":"1296269","assetDetail":{"repositoryAssetClass":{"archived":false}},"findings":[{"externalFindingId":"42","findingStatus":"ACTIVE","severity":"HIGH","firstFoundOn":"2026-11-21T09:00:00Z","lastFoundOn":"2026-11-21T09:00:00Z","lastFixedOn":null}]}
	// true
	// same content: true
	// same content: false
}

// The correlation key joins the same weakness at the same place reported by
// two tools: the first 16 hex digits of SHA-256 of
// "<repository_id>|<path>|<startLine>|<lowest CWE number>". Without a path,
// a start line or a CWE there is no key.
func ExampleCorrelationKey() {
	codeql := finding.CorrelationKey("1296269", "src/db.js", 42, []string{"CWE-943", "CWE-089"})
	imported := finding.CorrelationKey("1296269", "src/db.js", 42, []string{"CWE-89"})
	fmt.Println(codeql, codeql == imported)

	sum := sha256.Sum256([]byte("1296269|src/db.js|42|89"))
	fmt.Println(codeql == hex.EncodeToString(sum[:])[:16])

	fmt.Printf("%q\n", finding.CorrelationKey("1296269", "src/db.js", 42, nil))
	// Output:
	// 0698a1dfe5e58285 true
	// true
	// ""
}
