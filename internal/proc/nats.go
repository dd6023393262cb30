package proc

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// maxPayload is the benchmarks' nats-server max_payload: 32 MiB, so the
// receiver's largest accepted body fits in one message.
const maxPayload = 32 << 20

// WriteJetStreamConf writes dir/nats.conf: JetStream stored in dir/js and
// a 32 MiB max_payload. NATSSpec gives the address.
func WriteJetStreamConf(dir string) (string, error) {
	conf := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("max_payload: %d\njetstream { store_dir: %q }\n", maxPayload, filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write nats.conf: %w", err)
	}
	return conf, nil
}

// NATSSpec is nats-server (the binary bin) with the configuration conf,
// listening on addr (the command line wins over the file), ready once it
// accepts connections.
func NATSSpec(bin, conf, addr string) Spec {
	host, port, _ := net.SplitHostPort(addr)
	return Spec{
		Name:  "nats-server",
		Path:  bin,
		Args:  []string{"-c", conf, "-a", host, "-p", port},
		Ready: Listening(addr),
	}
}

// StartJetStream writes dir/nats.conf (WriteJetStreamConf) and starts
// nats-server (the binary bin, with env added) in g on a fresh loopback
// address. It returns the process and the server's client URL.
func (g *Group) StartJetStream(ctx context.Context, bin, dir string, env []string) (*Process, string, error) {
	conf, err := WriteJetStreamConf(dir)
	if err != nil {
		return nil, "", err
	}
	p, addrs, err := g.StartOnFreeAddrs(ctx, 1, func(a []string) Spec {
		s := NATSSpec(bin, conf, a[0])
		s.Env = env
		return s
	})
	if err != nil {
		return nil, "", err
	}
	return p, "nats://" + addrs[0], nil
}
