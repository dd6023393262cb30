package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// addrAttempts is how often StartOnFreeAddrs picks new addresses for a
// child that could not bind the ones it got.
const addrAttempts = 5

// StartOnFreeAddrs starts the Spec that spec gives for n loopback
// addresses nothing listens on, and waits until it is ready. The child
// binds them itself; if another process took one in between, the child
// exits before it is ready and is started again with new addresses, up to
// five times. It returns the addresses the child serves on.
func StartOnFreeAddrs(ctx context.Context, n int, spec func(addrs []string) Spec) (*Process, []string, error) {
	var last error
	for range addrAttempts {
		addrs, err := FreeAddrs(n)
		if err != nil {
			return nil, nil, err
		}
		p, err := Start(ctx, spec(addrs))
		if err == nil {
			return p, addrs, nil
		}
		if !errors.Is(err, ErrExited) {
			return nil, nil, err
		}
		last = err
	}
	return nil, nil, fmt.Errorf("%d attempts with fresh addresses: %w", addrAttempts, last)
}

// FreeAddrs returns n distinct loopback addresses that nothing listens on
// at the moment. Prefer StartOnFreeAddrs, which retries when one is taken
// before the child binds it; a test's own late listener (a sink that
// comes up after a while) needs the address before anything binds it.
func FreeAddrs(n int) ([]string, error) {
	out := make([]string, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free address: %w", err)
		}
		held = append(held, l) // held until all are picked, so they differ
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// HTTPReady is a Spec.Ready that wants 200 from GET url (a /readyz).
func HTTPReady(url string) func(ctx context.Context) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// Listening is a Spec.Ready that wants a TCP connection to addr.
func Listening(addr string) func(ctx context.Context) bool {
	return func(ctx context.Context) bool {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}
