package imports

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func seedFuzz(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "imports", "*"+ext))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkParse: a parser never panics, answers either results or a
// ParseError, and every result has an id of the allowed form.
func checkParse(t *testing.T, format string, data []byte) {
	_, err := Parse(format, data, func(r Result) error {
		if r.ID == "" || len(r.ID) > 64 || strings.Trim(r.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Fatalf("bad id %q", r.ID)
		}
		if r.EndLine < r.StartLine || r.StartLine < 0 {
			t.Fatalf("bad lines %d-%d", r.StartLine, r.EndLine)
		}
		return nil
	})
	var pe *ParseError
	if err != nil && !errors.As(err, &pe) {
		t.Fatalf("error %v is not a ParseError", err)
	}
	// Read as an upload arrives, a byte at a time, the file gives the
	// same answer, the line of an error included.
	sum, err := Parse(format, data, func(Result) error { return nil })
	sum2, err2 := ParseReader(format, iotest.OneByteReader(bytes.NewReader(data)), func(Result) error { return nil })
	if fmt.Sprint(sum, err) != fmt.Sprint(sum2, err2) {
		t.Fatalf("streamed: %v %v, whole: %v %v", sum2, err2, sum, err)
	}
}

func FuzzSARIF(f *testing.F) {
	seedFuzz(f, ".sarif")
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatSARIF, data) })
}

func FuzzCodexCSV(f *testing.F) {
	seedFuzz(f, ".csv")
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatCodexCSV, data) })
}

func FuzzCSV(f *testing.F) {
	seedFuzz(f, ".csv")
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatCSV, data) })
}
