// Package k8s_test checks the Kubernetes manifests in this folder without
// a cluster: every file is well-formed YAML with the fields Kubernetes
// requires, and the rules the deployment promises hold — NATS over TLS
// with certificates from cert-manager, the setup Job as the only holder of
// the setup identity, NATS monitoring reachable only from the namespace
// labelled for monitoring. It has no production code.
package k8s_test

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/yamldoc"
)

// manifests parses every *.yaml of this folder: file → documents.
func manifests(t *testing.T) map[string][]any {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	all := map[string][]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := yamldoc.Parse(string(b))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		all[f] = docs
	}
	return all
}

// get walks maps by keys; nil when a key is absent or a value no map.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

// objects are the documents of files (all files when none), by kind.
func objects(all map[string][]any, kind string, files ...string) []any {
	var out []any
	for f, docs := range all {
		if len(files) > 0 && !slices.Contains(files, f) {
			continue
		}
		for _, d := range docs {
			if str(d, "kind") == kind {
				out = append(out, d)
			}
		}
	}
	return out
}

func named(objs []any, name string) any {
	for _, o := range objs {
		if str(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

// TestManifestsAreWellFormed: every file parses, every object has
// apiVersion, kind and a name, and the kustomization lists files that
// exist.
func TestManifestsAreWellFormed(t *testing.T) {
	all := manifests(t)
	for f, docs := range all {
		if f == "nats-values.yaml" || f == "kustomization.yaml" {
			continue
		}
		for i, d := range docs {
			if str(d, "apiVersion") == "" || str(d, "kind") == "" || str(d, "metadata", "name") == "" {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i+1)
			}
		}
	}
	k := all["kustomization.yaml"]
	if len(k) != 1 {
		t.Fatal("kustomization.yaml: want one document")
	}
	for _, r := range list(k[0], "resources") {
		if _, ok := all[r.(string)]; !ok {
			t.Errorf("kustomization.yaml lists %v, which is not a manifest here", r)
		}
	}
}

// TestTheReaderRefusesSlips: the reader the tests use rejects what would
// make a manifest mean something else than it reads.
func TestTheReaderRefusesSlips(t *testing.T) {
	for name, src := range map[string]string{
		"repeated key":      "a: 1\nb: 2\na: 3\n",
		"stray indentation": "a:\n  b: 1\n   c: 2\n",
		"tab":               "a:\n\tb: 1\n",
		"open flow":         "a: {b: 1\n",
		"open quote":        "a: \"b\n",
		"bad item":          "a:\n  - b\n c: 1\n",
	} {
		if _, err := yamldoc.Parse(src); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	docs, err := yamldoc.Parse("# c\na: {b: [c, \"d: e\"], f: tls://x:1}\nl:\n- k: v\n  m: n # note\n- p\ns: |\n  x\n  y\n---\nz: 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || str(docs[0], "a", "f") != "tls://x:1" || list(docs[0], "a", "b")[1] != "d: e" ||
		str(list(docs[0], "l")[0], "m") != "n" || list(docs[0], "l")[1] != "p" || str(docs[0], "s") != "x\ny\n" || str(docs[1], "z") != "1" {
		t.Errorf("parsed %#v", docs)
	}
}

// configLiterals are the configMapGenerator literals of ghas-relay.
func configLiterals(t *testing.T, all map[string][]any) map[string]string {
	t.Helper()
	lit := map[string]string{}
	for _, g := range list(all["kustomization.yaml"][0], "configMapGenerator") {
		if str(g, "name") != "ghas-relay" {
			continue
		}
		for _, l := range list(g, "literals") {
			k, v, _ := strings.Cut(l.(string), "=")
			lit[k] = v
		}
	}
	return lit
}

// podSpecs are the pod specs of the workloads in files, by name.
func podSpecs(all map[string][]any, files ...string) map[string]any {
	specs := map[string]any{}
	for _, kind := range []string{"Deployment", "Job"} {
		for _, o := range objects(all, kind, files...) {
			specs[str(o, "metadata", "name")] = get(o, "spec", "template", "spec")
		}
	}
	for _, o := range objects(all, "CronJob", files...) {
		specs[str(o, "metadata", "name")+" (cronjob)"] = get(o, "spec", "jobTemplate", "spec", "template", "spec")
	}
	return specs
}

// TestNATSOverTLS: the binaries connect with tls:// and trust the CA of
// cert-manager's certificates, mounted from the CA Secret (its certificate
// only); the NATS servers serve clients and routes with a certificate for
// the Service and route names.
func TestNATSOverTLS(t *testing.T) {
	all := manifests(t)
	lit := configLiterals(t, all)
	url, ok := strings.CutPrefix(lit["NATS_URL"], "tls://")
	if !ok {
		t.Fatalf("NATS_URL %q is not tls://", lit["NATS_URL"])
	}
	host, _, _ := strings.Cut(url, ":")
	caFile := lit["NATS_TLS_CA_FILE"]
	if caFile == "" {
		t.Fatal("no NATS_TLS_CA_FILE in the ghas-relay ConfigMap")
	}

	// cert-manager: self-signed Issuer → CA Certificate → CA Issuer → server Certificate.
	issuers, certs := objects(all, "Issuer", "certificates.yaml"), objects(all, "Certificate", "certificates.yaml")
	server := named(certs, "nats-server")
	caIssuer := named(issuers, str(server, "spec", "issuerRef", "name"))
	ca := named(certs, "nats-ca")
	if caIssuer == nil || str(caIssuer, "spec", "ca", "secretName") != str(ca, "spec", "secretName") || str(ca, "spec", "isCA") != "true" {
		t.Fatalf("nats-server is not signed by a CA Issuer of the nats-ca Certificate")
	}
	if self := named(issuers, str(ca, "spec", "issuerRef", "name")); get(self, "spec", "selfSigned") == nil {
		t.Errorf("nats-ca is not issued by a self-signed Issuer")
	}
	var dns, usages []string
	for _, d := range list(server, "spec", "dnsNames") {
		dns = append(dns, d.(string))
	}
	for _, u := range list(server, "spec", "usages") {
		usages = append(usages, u.(string))
	}
	for _, want := range []string{host, "nats", "*.nats-headless"} {
		if !slices.Contains(dns, want) {
			t.Errorf("the server certificate does not name %s: %v", want, dns)
		}
	}
	for _, want := range []string{"server auth", "client auth"} {
		if !slices.Contains(usages, want) {
			t.Errorf("the server certificate lacks usage %q (routes verify both ends)", want)
		}
	}

	// The chart's values: TLS on clients and routes with that certificate.
	values := all["nats-values.yaml"][0]
	secret := str(server, "spec", "secretName")
	for _, block := range []string{"nats", "cluster"} {
		if str(values, "config", block, "tls", "enabled") != "true" || str(values, "config", block, "tls", "secretName") != secret {
			t.Errorf("nats-values.yaml: config.%s.tls is not enabled with %s", block, secret)
		}
	}
	if str(values, "tlsCA", "enabled") != "true" || str(values, "tlsCA", "secretName") == "" {
		t.Error("nats-values.yaml: no tlsCA for the routes to verify each other")
	}

	// Every workload mounts ca.crt (and only it) of the CA Secret where
	// NATS_TLS_CA_FILE points, and reads the ConfigMap.
	specs := podSpecs(all)
	if len(specs) < 5 {
		t.Fatalf("found %d workloads, want receiver, processor, reconciler (both), setup", len(specs))
	}
	for name, spec := range specs {
		vols := map[string]any{}
		for _, v := range list(spec, "volumes") {
			vols[str(v, "name")] = v
		}
		caVol := ""
		for n, v := range vols {
			if str(v, "secret", "secretName") == str(ca, "spec", "secretName") {
				items := list(v, "secret", "items")
				if len(items) != 1 || str(items[0], "key") != "ca.crt" || path.Join("/", str(items[0], "path")) != "/"+path.Base(caFile) {
					t.Errorf("%s: volume %s projects %v of the CA Secret, want ca.crt only", name, n, items)
				}
				caVol = n
			}
		}
		for _, c := range list(spec, "containers") {
			mounted := false
			for _, m := range list(c, "volumeMounts") {
				if _, ok := vols[str(m, "name")]; !ok {
					t.Errorf("%s: mount of undeclared volume %s", name, str(m, "name"))
				}
				if str(m, "name") == caVol && str(m, "mountPath") == path.Dir(caFile) {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s: the CA is not mounted at %s", name, path.Dir(caFile))
			}
			if from := list(c, "envFrom"); len(from) == 0 || str(from[0], "configMapRef", "name") != "ghas-relay" {
				t.Errorf("%s: does not read the ghas-relay ConfigMap", name)
			}
		}
	}
}

// env is a container's env entries with a value.
func env(c any) map[string]string {
	m := map[string]string{}
	for _, e := range list(c, "env") {
		m[str(e, "name")] = str(e, "value")
	}
	return m
}

// TestSetupIdentityOnlyInTheJob: the Job runs processor -setup as
// setup with the setup password; no long-running workload uses the
// setup or the admin identity; the Secret and the NATS users know it; the
// Job may reach NATS.
func TestSetupIdentityOnlyInTheJob(t *testing.T) {
	all := manifests(t)
	k := all["kustomization.yaml"][0]
	var resources []string
	for _, r := range list(k, "resources") {
		resources = append(resources, r.(string))
	}
	if !slices.Contains(resources, "setup-job.yaml") {
		t.Fatal("kustomization.yaml does not apply setup-job.yaml")
	}
	specs := podSpecs(all)
	job := specs["setup"]
	if job == nil || str(job, "restartPolicy") != "Never" {
		t.Fatal("no Job setup that runs once")
	}
	c := list(job, "containers")[0]
	if str(c, "image") != "ghas-relay-processor" || len(list(c, "args")) != 1 || list(c, "args")[0] != "-setup" || env(c)["NATS_USER"] != "setup" {
		t.Errorf("the setup Job does not run processor -setup as setup: %v", c)
	}
	keys := func(spec any) []string {
		var ks []string
		for _, v := range list(spec, "volumes") {
			if str(v, "secret", "secretName") == "ghas-relay-nats" {
				for _, it := range list(v, "secret", "items") {
					ks = append(ks, str(it, "key"))
				}
			}
		}
		return ks
	}
	if ks := keys(job); !slices.Equal(ks, []string{"GHAS_SETUP_PASSWORD"}) {
		t.Errorf("the setup Job mounts %v of ghas-relay-nats, want GHAS_SETUP_PASSWORD only", ks)
	}
	for name, spec := range specs {
		if name == "setup" {
			continue
		}
		for _, c := range list(spec, "containers") {
			// The binaries' users: ghas-<binary>, and console (the contract's name).
			if u := env(c)["NATS_USER"]; u == "setup" || u == "ghas-admin" || !strings.HasPrefix(u, "ghas-") && u != "console" {
				t.Errorf("%s logs in to NATS as %q", name, u)
			}
		}
		for _, key := range keys(spec) {
			if key == "GHAS_SETUP_PASSWORD" || key == "GHAS_ADMIN_PASSWORD" {
				t.Errorf("%s mounts %s", name, key)
			}
		}
	}
	sec := named(objects(all, "Secret", "secrets.example.yaml"), "ghas-relay-nats")
	if str(sec, "stringData", "GHAS_SETUP_PASSWORD") == "" {
		t.Error("secrets.example.yaml: ghas-relay-nats has no GHAS_SETUP_PASSWORD")
	}
	users, err := os.ReadFile(filepath.Join("..", "nats", "users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(users), "user: setup,") || !strings.Contains(string(users), "$GHAS_SETUP_PASSWORD") {
		t.Error("deploy/nats/users.conf has no user setup with $GHAS_SETUP_PASSWORD")
	}
	// The Job's pods may open NATS connections.
	np := named(objects(all, "NetworkPolicy", "networkpolicy.yaml"), "nats")
	admitted := false
	for _, rule := range list(np, "spec", "ingress") {
		for _, from := range list(rule, "from") {
			for _, e := range list(from, "podSelector", "matchExpressions") {
				for _, v := range list(e, "values") {
					admitted = admitted || v == "setup"
				}
			}
		}
	}
	if !admitted {
		t.Error("networkpolicy.yaml does not admit the setup Job to NATS")
	}
}

// TestNATSMonitoringOnlyFromMonitoringNamespace: port 8222 is admitted
// only from namespaces labelled ghas-relay.io/monitoring: "true", and no
// rule admits every port.
func TestNATSMonitoringOnlyFromMonitoringNamespace(t *testing.T) {
	all := manifests(t)
	np := named(objects(all, "NetworkPolicy", "networkpolicy.yaml"), "nats")
	if np == nil {
		t.Fatal("no NetworkPolicy nats")
	}
	found := false
	for i, rule := range list(np, "spec", "ingress") {
		ports := list(rule, "ports")
		if len(ports) == 0 {
			t.Errorf("rule %d admits every port", i+1)
		}
		for _, p := range ports {
			if str(p, "port") != "8222" {
				continue
			}
			found = true
			from := list(rule, "from")
			if len(ports) != 1 || len(from) != 1 || get(from[0], "podSelector") != nil ||
				str(from[0], "namespaceSelector", "matchLabels", "ghas-relay.io/monitoring") != "true" || len(get(from[0], "namespaceSelector", "matchLabels").(map[string]any)) != 1 {
				t.Errorf("rule %d admits 8222 from %v, want only namespaces labelled ghas-relay.io/monitoring: \"true\"", i+1, from)
			}
		}
	}
	if !found {
		t.Error("no rule admits the monitoring port: Prometheus could not scrape NATS")
	}
}
