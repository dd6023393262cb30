package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const secret = "demo-webhook-secret"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("dir", filepath.Join(".local", "demo"), "where the demo keeps binaries, JetStream data and logs")
	keep := fs.Bool("keep", false, "keep running after the demo (the console stays up) until Ctrl-C, and keep the JetStream data for the next run (default: start empty, stop at the end)")
	sinkFormat := fs.String("sink-format", "ocsf", "what the local sink receives: ocsf (OCSF 1.6.0 events) or document (finding documents)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }

	if _, err := os.Stat(filepath.Join("testdata", "webhooks")); err != nil {
		return errors.New("run from the module root (testdata/webhooks not found)")
	}
	binDir := filepath.Join(*dataDir, "bin")
	natsDir := filepath.Join(*dataDir, "nats")
	logDir := filepath.Join(*dataDir, "logs")
	if !*keep {
		_ = os.RemoveAll(natsDir)
	}
	for _, d := range []string{binDir, natsDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	say("building nats-server (the go.mod tool) and the four binaries into %s", binDir)
	if err := proc.Build(ctx, ".", binDir, stderr,
		"github.com/nats-io/nats-server/v2", "./cmd/receiver", "./cmd/processor", "./cmd/reconciler", "./cmd/console"); err != nil {
		return err
	}

	ps := &proc.Group{LogDir: logDir, Grace: 10 * time.Second}
	defer ps.StopAll()
	// Each child in its own process group: a Ctrl-C in the terminal reaches
	// the demo, which then stops the children in order.
	bin := func(name string, args []string, env []string, ready string) proc.Spec {
		s := proc.Spec{Name: name, Path: filepath.Join(binDir, name), Args: args, Env: env, OwnGroup: true, ReadyTimeout: 30 * time.Second}
		if ready != "" {
			s.Ready = proc.HTTPReady("http://" + ready + "/readyz")
		}
		return s
	}

	// JetStream, with the shipped configuration (deploy/nats): one user per
	// binary with its least-privilege permissions, fresh passwords each run.
	var natsCfg natsSetup
	var cfgErr error
	_, addrs, err := ps.StartOnFreeAddrs(ctx, 1, func(a []string) proc.Spec {
		host, port, _ := net.SplitHostPort(a[0])
		natsCfg, cfgErr = writeNATSConfig(filepath.Join(*dataDir, "nats-conf"), natsDir, host, port)
		s := bin("nats-server", []string{"-c", natsCfg.conf}, natsCfg.serverEnv, "")
		s.Ready = proc.Listening(a[0])
		return s
	})
	if cfgErr != nil {
		return cfgErr
	}
	if err != nil {
		return err
	}
	natsURL := "nats://" + addrs[0]
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.UserInfo("ghas-admin", natsCfg.passwords["admin"]))
	if err != nil {
		return fmt.Errorf("connect to nats-server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	say("JetStream at %s (data in %s), users and permissions of deploy/nats, one user per binary", natsURL, natsDir)

	// Fake GitHub with a small organisation and a user, plus one webhook
	// delivery GitHub failed to deliver.
	gh, err := ghtest.Start(ghtest.Options{})
	if err != nil {
		return err
	}
	defer gh.Close()
	world := gh.SeedDemo()
	missed, err := missedDelivery(ctx, gh, world)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(*dataDir, "app-key.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		return err
	}
	say("fake GitHub at %s: installations %s (organisation) and %s (user), %d repositories, one failed delivery %s",
		gh.URL(), world.Org.Account, world.User.Account, len(world.Repositories), missed)

	// Local sink that counts what it receives.
	sink := &sinkLog{}
	sinkSrv := &http.Server{Handler: sink, ReadHeaderTimeout: 5 * time.Second}
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = sinkSrv.Serve(sinkLn) }()
	defer sinkSrv.Close()

	// The setup step creates the layout: no binary's own user may.
	common := []string{"NATS_URL=" + natsURL, "LOG_FORMAT=json", "LOG_LEVEL=info"}
	if err := runSetup(ctx, ps, bin, append(common, natsCfg.env("setup")...), say, filepath.Join(logDir, "setup.log")); err != nil {
		return err
	}

	// The three binaries.
	app := []string{
		fmt.Sprintf("GITHUB_APP_ID=%d", gh.AppID()),
		"GITHUB_APP_PRIVATE_KEY_FILE=" + keyFile,
		"GITHUB_API_URL=" + gh.URL(),
	}
	decisionTokens, err := writeDecisionTokens(*dataDir) // decisions.go
	if err != nil {
		return err
	}
	_, addrs, err = ps.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
		return bin("receiver", nil, append(append(common, natsCfg.env("receiver")...),
			"LISTEN_ADDR="+a[0], "ADMIN_ADDR="+a[1], "GITHUB_WEBHOOK_SECRET="+secret, "IMPORT_TOKENS="+importToken,
			"DECISION_TOKENS_FILE="+decisionTokens), a[1])
	})
	if err != nil {
		return err
	}
	listen, recvAdmin := addrs[0], addrs[1]
	_, addrs, err = ps.StartOnFreeAddrs(ctx, 1, func(a []string) proc.Spec {
		return bin("processor", nil, append(append(append(common, natsCfg.env("processor")...), app...),
			"ADMIN_ADDR="+a[0], "SINK_URL=http://"+sinkLn.Addr().String()+"/findings", "SINK_TOKEN=demo-sink-token", "SINK_FORMAT="+*sinkFormat,
			"WRITE_BACK=true"), a[0])
	})
	if err != nil {
		return err
	}
	procAdmin := addrs[0]
	say("receiver on http://%s/webhook, processor ready (admin %s, %s)", listen, recvAdmin, procAdmin)
	// The console, open on loopback (no tokens), as its read-only user.
	consoleURL, err := startConsole(ctx, ps, bin, append(common, natsCfg.env("console")...)) // console.go
	if err != nil {
		return err
	}
	say("console at %s/ (pages) and %s/api/summary (JSON)", consoleURL, consoleURL)

	// Every sample delivery, signed; their repositories and alerts exist in
	// the fake GitHub, as they would, so that the full pull keeps them.
	samples, err := webhooktest.Samples(filepath.Join("testdata", "webhooks"))
	if err != nil {
		return err
	}
	gh.AddDelivered(delivered(samples)) // console.go
	counts := map[string]int{}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, s := range samples {
		req := webhooktest.NewRequest("http://"+listen+"/webhook", s.Event, s.Delivery(), s.Body, secret)
		resp, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("send %s/%s: %w", s.Event, s.Name, err)
		}
		var ans struct{ Status string }
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		counts[fmt.Sprintf("%d %s", resp.StatusCode, ans.Status)]++
	}
	say("sent %d signed sample deliveries: %s", len(samples), summary(counts))

	// One reconcile: missed-delivery sweep, delta pull and full pull.
	say("reconciling against the fake GitHub (reconciler -once, all modes)")
	// Its admin listener is not waited for: any free port will do.
	rec, err := ps.Start(ctx, bin("reconciler", []string{"-once"}, append(append(append(common, natsCfg.env("reconciler")...), app...),
		"ADMIN_ADDR=127.0.0.1:0", "RECONCILE_MODE=daemon"), ""))
	if err != nil {
		return err
	}
	select {
	case <-rec.Done():
	case <-time.After(90 * time.Second):
		return errors.New("reconciler did not finish within 90 s; see " + filepath.Join(logDir, "reconciler.log"))
	case <-ctx.Done():
		return ctx.Err()
	}
	say("reconciler exited with code %d (report in %s)", rec.ExitCode(), filepath.Join(logDir, "reconciler.log"))

	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	docs, err := loadFindings(ctx, js)
	if err != nil {
		return err
	}
	if err := waitSink(ctx, sink, docs); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
	}
	printTable(stdout, docs)
	printOwners(stdout, docs)
	sink.print(stdout, *sinkFormat)
	if err := demoImports(ctx, stdout, listen, js); err != nil { // findings of other tools (imports.go)
		fmt.Fprintln(stderr, "demo:", err)
	} else if err := demoDecisions(ctx, stdout, listen, js, gh, world); err != nil { // a triage decision's round trip (decisions.go)
		fmt.Fprintln(stderr, "demo:", err)
	}
	if all, err := loadFindings(ctx, js); err == nil {
		printTopPriorities(stdout, all) // priority.go
	}
	dlq := streamMsgs(ctx, js, stream.DLQStream)
	fmt.Fprintf(stdout, "\n%d findings in KV %s, %d finding messages on %s, %d POSTs received by the local sink, %d dead letters; done in %s.\n",
		len(docs), stream.FindingsBucket, streamMsgs(ctx, js, stream.FindingsStream), stream.FindingsStream, sink.count(), dlq, time.Since(started).Round(100*time.Millisecond))
	if err := printConsole(ctx, stdout, consoleURL, len(docs)); err != nil { // console.go
		fmt.Fprintln(stderr, "demo:", err)
	}
	fmt.Fprintf(stdout, `
The sample deliveries' repositories and alerts exist in the fake GitHub, so
the full pull confirms their findings; the octo-org and octocat findings come
from the pull, and %d event(s) on ghas.redelivery.> are the failed delivery
the sweep recovered.

Where to look next:
  the console                   %s/ (rerun with -keep to keep it running)
  logs of every process         %s
  JetStream data                %s (rerun with -keep to keep it)
  the finding document          docs/mapping.md; the design in docs/architecture.md
  running against real GitHub   docs/operations.md
`, redelivered(ctx, js), consoleURL, logDir, natsDir)
	if *keep {
		fmt.Fprintf(stdout, "\nEverything keeps running (-keep): open %s/ in a browser; Ctrl-C stops it all.\n", consoleURL)
		<-ctx.Done()
	}
	return nil
}

// runSetup runs `processor -setup` as the setup user (the log says what it
// created) and waits for it to exit 0.
func runSetup(ctx context.Context, ps *proc.Group, bin func(string, []string, []string, string) proc.Spec, env []string, say func(string, ...any), log string) error {
	s := bin("processor", []string{"-setup"}, env, "")
	s.Name = "setup"
	p, err := ps.Start(ctx, s)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		return errors.New("processor -setup did not finish within 60 s; see " + log)
	case <-ctx.Done():
		return ctx.Err()
	}
	if code := p.ExitCode(); code != 0 {
		return fmt.Errorf("processor -setup exited with code %d; see %s", code, log)
	}
	say("processor -setup (user setup) created the streams and buckets (%s); the binaries' own users may not", log)
	return nil
}

// missedDelivery records in the fake GitHub a code scanning delivery that
// failed (the receiver was down): a change to one of octo-org's alerts, for
// the reconciler's sweep to recover. It is built as GitHub builds it: the
// alert as REST shows it, with the repository and the installation.
func missedDelivery(ctx context.Context, gh *ghtest.Server, world ghtest.Demo) (string, error) {
	client, err := ghclient.New(slog.New(slog.NewTextHandler(io.Discard, nil)), ghclient.Config{BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKeyPEM: gh.PrivateKeyPEM()})
	if err != nil {
		return "", err
	}
	repo := world.Repositories[0]
	alerts := gh.Alerts(repo.ID, ghtest.CodeScanning)
	a := alerts[len(alerts)-1]
	gh.UpdateAlert(repo.ID, ghtest.CodeScanning, a.Number, func(a *ghtest.Alert) {
		a.State = "dismissed"
		a.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	})
	alert, err := client.GetAlert(ctx, world.Org.ID, ghclient.Kind(ghtest.CodeScanning), repo.Owner, repo.Name, a.Number)
	if err != nil {
		return "", err
	}
	repos, err := client.Repositories(ctx, world.Org.ID)
	if err != nil {
		return "", err
	}
	var repoRaw json.RawMessage
	for _, r := range repos {
		if r.ID == repo.ID {
			repoRaw = r.Raw
		}
	}
	payload, err := json.Marshal(map[string]any{"action": "closed_by_user", "alert": alert, "repository": repoRaw, "installation": map[string]any{"id": world.Org.ID}})
	if err != nil {
		return "", err
	}
	guid := webhooktest.GUID("demo-missed-delivery")
	gh.AddDelivery(ghtest.Delivery{
		GUID: guid, Event: "code_scanning_alert", Action: "closed_by_user",
		Status: "Invalid HTTP Response: 503", StatusCode: 503,
		InstallationID: world.Org.ID, RepositoryID: repo.ID, Payload: payload,
	})
	return fmt.Sprintf("%s (%s alert %d dismissed)", guid, repo.FullName, a.Number), nil
}

// waitDrained waits until the processors have acked every event.
func waitDrained(ctx context.Context, js jetstream.JetStream) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := stream.Drained(ctx, js, processor.ConsumerName); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the processor did not drain GHAS_EVENTS within 60 s")
}

func loadFindings(ctx context.Context, js jetstream.JetStream) ([]finding.Document, error) {
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var docs []finding.Document
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		d, err := finding.Decode(e.Value())
		if err == nil {
			docs = append(docs, d)
		}
	}
	slices.SortFunc(docs, func(a, b finding.Document) int { return strings.Compare(a.FindingKey, b.FindingKey) })
	return docs, nil
}

func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) uint64 {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// redelivered counts the events the missed-delivery sweep published.
func redelivered(ctx context.Context, js jetstream.JetStream) uint64 {
	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(stream.RedeliveryPrefix+">"))
	if err != nil {
		return 0
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func printTable(w io.Writer, docs []finding.Document) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FINDING KEY\tTYPE\tSEVERITY\tSTATUS\tORIGIN\tREPOSITORY\tNAME")
	for _, d := range docs {
		f := d.Finding()
		if f == nil {
			continue
		}
		name := f.Name
		if len(name) > 48 {
			name = name[:45] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.FindingKey, d.FindingTypeName, f.Severity, f.FindingStatus, d.Origin, d.AssetDetail.FullName, name)
	}
	_ = tw.Flush()
}

func summary(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d × %s", v, k))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// waitSink waits until the sink holds the current version of every finding.
func waitSink(ctx context.Context, s *sinkLog, docs []finding.Document) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		missing := 0
		for _, d := range docs {
			if !s.has(d) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the sink did not receive every finding within 30 s")
}
