package ghtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSamplesMatchTestdata: the REST samples the fake renders from are
// copies of the repository's testdata/rest; a sample edited (or refreshed)
// in one place only would make the fake drift from what the other tests
// read.
func TestSamplesMatchTestdata(t *testing.T) {
	copies, err := filepath.Glob("samples/*.json")
	if err != nil || len(copies) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, c := range copies {
		got, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "rest", filepath.Base(c)))
		if err != nil {
			t.Errorf("%s has no original in testdata/rest: %v", c, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from testdata/rest/%s: copy it again", c, filepath.Base(c))
		}
	}
}
