package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/proc"
)

// announced is the Content-Length the stalled clients announce: the
// default MAX_BODY_BYTES, the largest body the receiver accepts.
const announced = 26214400

// slowClients connects n clients that each announce a body of the largest
// accepted size and stall (half send nothing, half one byte), then sends one honest
// signed 2 MiB delivery, and reports the receiver's RSS before, while the
// clients are held, and the honest delivery's answer.
func slowClients(ctx context.Context, client *http.Client, url string, pid, n int, stdout io.Writer) error {
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/webhook")
	rss := func() int64 {
		v, _ := proc.Memory(pid, "VmRSS")
		return v
	}
	before := rss()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			return fmt.Errorf("slow client %d: %w", i, err)
		}
		conns = append(conns, c)
		_, err = fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"+
			"X-GitHub-Event: code_scanning_alert\r\nX-GitHub-Delivery: %s\r\n"+
			"X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n%s",
			nextID("slow"), strings.Repeat("0", 64), announced, strings.Repeat("{", i%2))
		if err != nil {
			return fmt.Errorf("slow client %d: %w", i, err)
		}
	}
	// Let the receiver read every request's headers and reach its body.
	time.Sleep(3 * time.Second)
	held := rss()

	big, err := payload(2 << 20)
	if err != nil {
		return err
	}
	start := time.Now()
	status := "202"
	if err := httpSender(client, url, big)(ctx); err != nil {
		status = err.Error()
	}
	took := time.Since(start)
	during := rss()
	// Every stalled client is still connected: none was answered.
	answered := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if k, _ := c.Read(buf); k > 0 {
			answered++
		}
	}
	fmt.Fprintf(stdout, "\n### %d stalled clients announcing %d-byte bodies\n\n", n, announced)
	fmt.Fprintln(stdout, "| receiver RSS before MiB | with the clients held MiB | after an honest 2 MiB delivery MiB | growth per client KiB | honest delivery | its latency ms | stalled clients answered |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---|---:|---:|")
	fmt.Fprintf(stdout, "| %s | %s | %s | %.1f | %s | %s | %d |\n", mb(before), mb(held), mb(during),
		float64(held-before)/1024/float64(n), status, ms(took), answered)
	if status != "202" {
		return fmt.Errorf("honest delivery with %d stalled clients: %s", n, status)
	}
	return nil
}
