package k8s_test

import (
	"slices"
	"testing"
)

// TestConsoleInsideTheCluster: the console runs as its NATS user console
// with only its own password, needs tokens (it listens off loopback),
// is reachable through a ClusterIP Service only, and its NetworkPolicy
// admits its two ports from the cluster; NATS admits it.
func TestConsoleInsideTheCluster(t *testing.T) {
	all := manifests(t)
	var resources []string
	for _, r := range list(all["kustomization.yaml"][0], "resources") {
		resources = append(resources, r.(string))
	}
	if !slices.Contains(resources, "console.yaml") {
		t.Fatal("kustomization.yaml does not apply console.yaml")
	}
	spec := podSpecs(all)["console"]
	if spec == nil {
		t.Fatal("no Deployment console")
	}
	c := list(spec, "containers")[0]
	e := env(c)
	if e["NATS_USER"] != "console" || e["CONSOLE_TOKENS_FILE"] == "" || e["CONSOLE_ADDR"] == "" || e["CONSOLE_TOKENS"] != "" {
		t.Errorf("the console's environment: %v (want NATS_USER console, CONSOLE_ADDR, a CONSOLE_TOKENS_FILE)", e)
	}
	var natsKeys []string
	tokens := false
	for _, v := range list(spec, "volumes") {
		switch str(v, "secret", "secretName") {
		case "ghas-relay-nats":
			for _, it := range list(v, "secret", "items") {
				natsKeys = append(natsKeys, str(it, "key"))
			}
		case "ghas-relay-console":
			tokens = true
		}
	}
	if !slices.Equal(natsKeys, []string{"GHAS_CONSOLE_PASSWORD"}) || !tokens {
		t.Errorf("the console mounts %v of ghas-relay-nats (want GHAS_CONSOLE_PASSWORD only) and tokens %v", natsKeys, tokens)
	}
	svc := named(objects(all, "Service", "console.yaml"), "console")
	if svc == nil || str(svc, "spec", "type") != "ClusterIP" {
		t.Errorf("the console's Service is not ClusterIP: %v", svc)
	}
	for _, o := range objects(all, "Service") {
		if typ := str(o, "spec", "type"); str(o, "metadata", "name") == "console" && typ != "ClusterIP" {
			t.Errorf("a console Service of type %s", typ)
		}
	}
	np := named(objects(all, "NetworkPolicy", "networkpolicy.yaml"), "console")
	var ports []string
	for _, rule := range list(np, "spec", "ingress") {
		if len(list(rule, "from")) == 0 {
			t.Error("a console rule admits every source")
		}
		for _, p := range list(rule, "ports") {
			ports = append(ports, str(p, "port"))
		}
	}
	if slices.Sort(ports); !slices.Equal(ports, []string{"8090", "9093"}) {
		t.Errorf("the console's NetworkPolicy admits ports %v, want 8090 and 9093", ports)
	}
	admitted := false
	for _, rule := range list(named(objects(all, "NetworkPolicy", "networkpolicy.yaml"), "nats"), "spec", "ingress") {
		for _, from := range list(rule, "from") {
			for _, ex := range list(from, "podSelector", "matchExpressions") {
				admitted = admitted || slices.Contains(list(ex, "values"), any("console"))
			}
		}
	}
	if !admitted {
		t.Error("networkpolicy.yaml does not admit the console to NATS")
	}
	if str(named(objects(all, "Secret", "secrets.example.yaml"), "ghas-relay-nats"), "stringData", "GHAS_CONSOLE_PASSWORD") == "" {
		t.Error("secrets.example.yaml: ghas-relay-nats has no GHAS_CONSOLE_PASSWORD")
	}
}
