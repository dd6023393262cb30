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

// seedFuzz seeds a fuzzer with the samples and the corpus of real logs
// (testdata/imports and testdata/imports/corpus).
//
// Under go test -fuzz the engine minimizes every input that finds new
// coverage, for up to -fuzzminimizetime (60 s by default) each, and counts
// no executions meanwhile: with seeds of several kilobytes the fuzzer
// seems to stall at 0 execs/s while it minimizes. Bound it, e.g.
// go test ./internal/imports -run '^$' -fuzz '^FuzzSARIF$' -fuzzminimizetime 100x
func seedFuzz(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "imports", "*"+ext))
	corpus, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "imports", "corpus", "*"+ext))
	for _, p := range append(files, corpus...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkParse: a parser never panics, answers either results or a
// ParseError, every result has an id of the allowed form and a path that
// stays in the repository (or is absolute).
func checkParse(t *testing.T, format string, data []byte) {
	sum, err := Parse(format, data, func(r Result) error {
		if r.ID == "" || len(r.ID) > 64 || strings.Trim(r.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Fatalf("bad id %q", r.ID)
		}
		if r.EndLine < r.StartLine || r.StartLine < 0 {
			t.Fatalf("bad lines %d-%d", r.StartLine, r.EndLine)
		}
		if p := r.Path; p != "" && !isAbsPath(p) && (p == ".." || strings.HasPrefix(p, "../")) {
			t.Fatalf("path %q climbs out of the repository", p)
		}
		return nil
	})
	var pe *ParseError
	if err != nil && !errors.As(err, &pe) {
		t.Fatalf("error %v is not a ParseError", err)
	}
	// Read as an upload arrives, a byte at a time, the file gives the
	// same answer, the line of an error included.
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
