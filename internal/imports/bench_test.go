package imports

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// sarifStream is a SARIF log of blocks×1,000 results of about 400 bytes
// each, made as it is read from one block of 1,000 held in memory, so
// that the file is never in memory whole: like an upload, it arrives as
// bytes.
func sarifStream(blocks int) io.Reader {
	var block bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&block, `,{"ruleId":"r1","level":"error","message":{"text":"Untrusted data flows into a query at line %d of a file that is long enough to look like real output"},`+
			`"locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/module%d/file%d.go","uriBaseId":"%%SRCROOT%%"},"region":{"startLine":%d,"endLine":%d}}}],`+
			`"partialFingerprints":{"primaryLocationLineHash":"%016x:1"}}`, i, i%97, i, i%5000+1, i%5000+3, uint64(i)*2654435761)
	}
	head := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Bench","rules":[{"id":"r1","shortDescription":{"text":"Rule one"},"properties":{"security-severity":"7.5","tags":["external/cwe/cwe-89"]}}]}},"results":[`
	parts := []io.Reader{strings.NewReader(head), bytes.NewReader(block.Bytes()[1:])}
	for range blocks - 1 {
		parts = append(parts, bytes.NewReader(block.Bytes()))
	}
	return io.MultiReader(append(parts, strings.NewReader(`]}]}`))...)
}

// heapPeak samples the heap until stop is closed and returns the largest
// object bytes (what the heap holds, garbage not yet collected included:
// what the process needs) and the largest live heap after a collection.
func heapPeak(stop <-chan struct{}) <-chan [2]uint64 {
	out := make(chan [2]uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		var peak [2]uint64
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak[0], peak[1] = max(peak[0], s[0].Value.Uint64()), max(peak[1], s[1].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// BenchmarkValidateLargeSARIF is the receiver's part of an import of an
// 18 MiB SARIF log of 50,000 results sent with its Content-Length: the
// body read, validated, hashed and compressed. It reports the time per
// result and the peak heap of the whole run (GOGC as set).
func BenchmarkValidateLargeSARIF(b *testing.B) {
	const results = 50000
	size, _ := io.Copy(io.Discard, sarifStream(results/1000))
	b.SetBytes(size)
	runtime.GC()
	stop := make(chan struct{})
	peak := heapPeak(stop)
	stored := 0
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, Path, sarifStream(results/1000))
		req.ContentLength = size
		in, herr := openBody(httptest.NewRecorder(), req, 32<<20, sha256.New())
		if herr != nil {
			b.Fatal(herr)
		}
		sum, err := ParseReader(FormatSARIF, in, func(Result) error { return nil })
		if herr := in.finish(err == nil); herr != nil || err != nil || sum.Results != results {
			b.Fatal(herr, err, sum.Results)
		}
		stored = len(in.compressed())
	}
	b.StopTimer()
	close(stop)
	p := <-peak
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*results), "ns/result")
	b.ReportMetric(float64(p[0])/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(p[1])/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(size)/(1<<20), "file-MiB")
	b.ReportMetric(float64(stored)/(1<<20), "stored-MiB")
}
