package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// serveMinimal is the second floor: about the least any HTTP/1.1 server
// can do per delivery. One goroutine per connection reads with a 16 KiB
// buffer (a whole 8 KB delivery in one system call), splits the head into
// lines, takes Content-Length and the GitHub headers, reads the body,
// publishes it as the receiver does and writes a fixed 202 with one system
// call. It validates nothing and has no timeouts or limits: it is a
// measuring stick, never a server to expose.
func serveMinimal(addr string, js jetstream.JetStream) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	pool := sync.Pool{New: func() any { return new([64 << 10]byte) }}
	resp := []byte("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"status\":\"accepted\"}\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			for {
				var cl int
				var id, event, hook string
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				_ = line
				for {
					l, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					l = bytes.TrimRight(l, "\r\n")
					if len(l) == 0 {
						break
					}
					k, v, ok := bytes.Cut(l, []byte(":"))
					if !ok {
						return
					}
					v = bytes.TrimSpace(v)
					switch {
					case bytes.EqualFold(k, []byte("Content-Length")):
						cl, _ = strconv.Atoi(string(v))
					case bytes.EqualFold(k, []byte("X-GitHub-Delivery")):
						id = string(v)
					case bytes.EqualFold(k, []byte("X-GitHub-Event")):
						event = string(v)
					case bytes.EqualFold(k, []byte("X-GitHub-Hook-ID")):
						hook = string(v)
					}
				}
				buf := pool.Get().(*[64 << 10]byte)
				if cl > len(buf) {
					return
				}
				if _, err := io.ReadFull(br, buf[:cl]); err != nil {
					return
				}
				err = publish(context.Background(), js, buf[:cl], id, event, hook)
				pool.Put(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}
