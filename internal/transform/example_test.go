package transform_test

import (
	"fmt"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// A code scanning webhook through the default maps: the rule's security
// severity gives the severity, its CWE tags the CWE list (leading zeros
// dropped), and the repository and the alert's location the link to the
// code on the default branch.
func ExampleMaps_Alert() {
	payload := []byte(`{
	  "action": "created",
	  "alert": {
	    "number": 42,
	    "created_at": "2026-11-20T08:00:00Z",
	    "updated_at": "2026-11-20T08:00:00Z",
	    "html_url": "https://github.com/octo-org/octo-repo/security/code-scanning/42",
	    "state": "open",
	    "rule": {
	      "id": "js/sql-injection",
	      "severity": "error",
	      "security_severity_level": "critical",
	      "description": "Database query built from user-controlled sources",
	      "tags": ["security", "external/cwe/cwe-089"]
	    },
	    "tool": {"name": "CodeQL"},
	    "most_recent_instance": {
	      "ref": "refs/heads/main",
	      "location": {"path": "src/db.js", "start_line": 42, "end_line": 44}
	    }
	  },
	  "repository": {
	    "id": 1296269,
	    "name": "octo-repo",
	    "full_name": "octo-org/octo-repo",
	    "html_url": "https://github.com/octo-org/octo-repo",
	    "default_branch": "main",
	    "visibility": "private",
	    "owner": {"login": "octo-org"}
	  }
	}`)
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	d, err := transform.Defaults().Alert(transform.Event{
		Name:    transform.EventCodeScanning,
		Payload: payload,
		Origin:  "webhook",
	}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	f := d.Finding()
	fmt.Println(d.FindingKey, d.FindingTypeName, d.VendorProductName)
	fmt.Println(d.ExternalAssetID, d.AssetDetail.RepositoryAssetClass.Visibility)
	fmt.Println(f.Name)
	fmt.Println(f.FindingStatus, f.Severity, f.RuleID, f.DetectionMethod)
	fmt.Println(f.FindingType.Vulnerability.CWEIDs)
	fmt.Println(f.FindingDetectionURL)
	fmt.Println(*f.FirstFoundOn, *f.LastFoundOn, f.LastFixedOn == nil)
	// Output:
	// sast.1296269.42 APPLICATION_SAST GitHub Code Security
	// https://github.com/octo-org/octo-repo private
	// Database query built from user-controlled sources
	// ACTIVE CRITICAL js/sql-injection CodeQL
	// [CWE-89]
	// https://github.com/octo-org/octo-repo/blob/main/src/db.js#L42-L44
	// 2026-11-20T08:00:00Z 2026-11-20T08:00:00Z true
}

// The same alert fixed: a webhook whose alert has no state takes its status
// from the action, and without a security severity the rule's level
// (error) gives HIGH.
func ExampleMaps_Alert_fixed() {
	payload := []byte(`{
	  "action": "fixed",
	  "alert": {
	    "number": 42,
	    "state": null,
	    "fixed_at": "2026-11-22T12:00:00Z",
	    "rule": {"id": "js/sql-injection", "severity": "error"}
	  },
	  "repository": {"id": 1296269, "html_url": "https://github.com/octo-org/octo-repo"}
	}`)
	d, err := transform.Defaults().Alert(transform.Event{
		Name:    transform.EventCodeScanning,
		Payload: payload,
		Origin:  "webhook",
	}, time.Date(2026, 11, 22, 12, 0, 1, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	f := d.Finding()
	fmt.Println(f.FindingStatus, f.Severity, *f.LastFixedOn, *f.LastFoundOn)
	// Output:
	// FIXED HIGH 2026-11-22T12:00:00Z 2026-11-22T12:00:00Z
}
