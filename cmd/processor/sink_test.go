package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// testSink starts an HTTP sink that answers 200 and reports each POST.
func testSink(t *testing.T, got func(r *http.Request, body []byte)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got(r, b)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
