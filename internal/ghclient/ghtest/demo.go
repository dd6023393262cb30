package ghtest

// Demo describes what SeedDemo created.
type Demo struct {
	Org, User    Installation
	Repositories []Repository
}

// SeedDemo fills the world with a small, varied demo for a local run
// without a GitHub account: an organisation installation "octo-org" with
// three repositories (one with code scanning off), owned by three teams,
// and a user installation "octocat" with one repository, each with alerts
// of every kind in mixed states: GitHub's documented example alerts with
// ten code scanning rules of four tools (CodeQL, Semgrep, Trivy, ESLint),
// ten Dependabot advisories and five secret types, so that severities,
// priorities and owners differ.
func (s *Server) SeedDemo() Demo {
	d := Demo{
		Org:  s.AddInstallation("octo-org", "Organization"),
		User: s.AddInstallation("octocat", "User"),
	}
	for i, name := range []string{"octo-repo", "payments", "website"} {
		r := s.AddRepository(d.Org.ID, name, i != 2)
		d.Repositories = append(d.Repositories, r)
		s.AddAlerts(r.ID, CodeScanning, 12-3*i)
		s.AddAlerts(r.ID, Dependabot, 8+i)
		s.AddAlerts(r.ID, SecretScanning, 5-i)
		for _, k := range Kinds() {
			s.vary(r.ID, k, 3*i)
		}
	}
	s.SetFeature(d.Repositories[2].ID, CodeScanning, FeatureOff)
	// Ownership and criticality as organisations record them: custom
	// properties (the values as people type them: the priority reads them
	// lower-cased) and topics.
	for i, f := range []RepositoryFacts{
		{Topics: []string{"api", "go"}, Properties: map[string]any{"owner": "team-platform", "business_unit": "Core", "criticality": "High", "environment": []string{"production", "staging"}}},
		{Topics: []string{"pci"}, Properties: map[string]any{"owner": "team-payments", "business_unit": "Retail", "criticality": "Critical", "environment": []string{"production"}}},
		{Topics: []string{"frontend"}, Properties: map[string]any{"owner": "team-web", "business_unit": nil, "criticality": "low"}},
	} {
		s.SetRepositoryFacts(d.Repositories[i].ID, f)
	}
	// Not Hello-World: a sample delivery's octocat/hello-world may join it
	// (AddDelivered).
	r := s.AddRepository(d.User.ID, "Spoon-Knife", false)
	d.Repositories = append(d.Repositories, r)
	s.AddAlerts(r.ID, CodeScanning, 4)
	s.AddAlerts(r.ID, Dependabot, 3)
	s.AddAlerts(r.ID, SecretScanning, 2)
	for _, k := range Kinds() {
		s.vary(r.ID, k, 5)
	}
	return d
}
