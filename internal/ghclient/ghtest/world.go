package ghtest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The world the fake serves: installations, repositories and alerts, changed
// by the tests.

func (s *Server) id() int64 { s.nextID++; return s.nextID }

// AddInstallation adds an installation on account; typ is "Organization" or "User".
func (s *Server) AddInstallation(account, typ string) Installation {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := &installState{
		Installation: Installation{ID: s.id(), Account: account, AccountID: s.id(), Type: typ},
		orgRefused:   map[Kind]bool{},
	}
	s.installs[in.ID] = in
	s.installOrder = append(s.installOrder, in.ID)
	s.version++
	return in.Installation
}

// SuspendInstallation suspends (or resumes) an installation: its token
// requests fail with 403.
func (s *Server) SuspendInstallation(id int64, suspended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installs[id]; in != nil {
		in.Suspended = suspended
	}
}

// RefuseOrgEndpoint makes the organisation endpoint of kind answer 403
// "Resource not accessible by integration" for the installation.
func (s *Server) RefuseOrgEndpoint(installationID int64, kind Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installs[installationID]; in != nil {
		in.orgRefused[kind] = true
	}
}

// AddRepository adds a repository named name to the installation's account.
func (s *Server) AddRepository(installationID int64, name string, private bool) Repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[installationID]
	if in == nil {
		panic(fmt.Sprintf("ghtest: no installation %d", installationID))
	}
	r := &repoState{
		Repository: Repository{
			ID: s.id(), InstallationID: in.ID, Owner: in.Account, OwnerID: in.AccountID, OwnerType: in.Type,
			Name: name, FullName: in.Account + "/" + name, Private: private,
			CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(len(s.repos)) * time.Hour),
		},
		alerts:   map[Kind][]Alert{},
		features: map[Kind]Feature{},
		next:     map[Kind]int64{},
	}
	if err := s.fillRepository(r); err != nil {
		panic(fmt.Sprintf("ghtest: render repository: %v", err))
	}
	s.repos[r.ID] = r
	s.reposByName[strings.ToLower(r.FullName)] = r
	in.repoIDs = append(in.repoIDs, r.ID)
	s.version++
	return r.Repository
}

// RemoveRepository removes a repository (deleted, or taken out of the installation).
func (s *Server) RemoveRepository(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[id]
	if r == nil {
		return
	}
	delete(s.repos, id)
	delete(s.reposByName, strings.ToLower(r.FullName))
	if in := s.installs[r.InstallationID]; in != nil {
		in.repoIDs = slices.DeleteFunc(in.repoIDs, func(x int64) bool { return x == id })
	}
	s.version++
}

// SetFeature turns an alert kind on or off for a repository.
func (s *Server) SetFeature(repoID int64, kind Kind, f Feature) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[repoID]; r != nil {
		r.features[kind] = f
		s.version++
	}
}

// AlertTime is the creation time of generated alert number n: one minute
// apart from 2024-01-01, so that every ordering is deterministic.
func AlertTime(n int64) time.Time {
	return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
}

// AddAlerts generates n alerts of kind in a repository, numbered after the
// existing ones, with states cycling deterministically (every 5th fixed or
// revoked, every 7th dismissed or false positive, the rest open).
func (s *Server) AddAlerts(repoID int64, kind Kind, n int) []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	out := make([]Alert, 0, n)
	for range n {
		r.next[kind]++
		num := r.next[kind]
		a := Alert{Number: num, State: "open", CreatedAt: AlertTime(num), UpdatedAt: AlertTime(num).Add(30 * time.Second), Template: int(num)}
		switch {
		case num%5 == 0 && kind == SecretScanning:
			a.State, a.Resolution = "resolved", "revoked"
		case num%5 == 0:
			a.State = "fixed"
		case num%7 == 0 && kind == SecretScanning:
			a.State, a.Resolution = "resolved", "false_positive"
		case num%7 == 0:
			a.State = "dismissed"
		}
		r.alerts[kind] = append(r.alerts[kind], a)
		out = append(out, a)
	}
	s.version++
	return out
}

// PutAlert stores a (number 0: the next number) and returns it.
func (s *Server) PutAlert(repoID int64, kind Kind, a Alert) Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	if a.Number == 0 {
		r.next[kind]++
		a.Number = r.next[kind]
	}
	r.next[kind] = max(r.next[kind], a.Number)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = AlertTime(a.Number)
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	list := r.alerts[kind]
	i, found := sort.Find(len(list), func(i int) int { return cmpInt(a.Number, list[i].Number) })
	if found {
		list[i] = a
	} else {
		list = slices.Insert(list, i, a)
	}
	r.alerts[kind] = list
	s.version++
	return a
}

// UpdateAlert changes one alert in place; false if there is none.
func (s *Server) UpdateAlert(repoID int64, kind Kind, number int64, change func(*Alert)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		return false
	}
	list := r.alerts[kind]
	i, found := sort.Find(len(list), func(i int) int { return cmpInt(number, list[i].Number) })
	if !found {
		return false
	}
	change(&list[i])
	list[i].Number = number
	s.version++
	return true
}

// DeleteAlert removes one alert.
func (s *Server) DeleteAlert(repoID int64, kind Kind, number int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[repoID]; r != nil {
		r.alerts[kind] = slices.DeleteFunc(r.alerts[kind], func(a Alert) bool { return a.Number == number })
		s.version++
	}
}

// HideFromListings leaves one alert out of every listing (organisation and
// repository endpoints) while GET /repos/{owner}/{repo}/{kind}/alerts/{number}
// still returns it, or shows it again (hidden false): what a listing looks
// like to a client when its pages shift under concurrent deletions.
func (s *Server) HideFromListings(repoID int64, kind Kind, number int64, hidden bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	if r.hidden == nil {
		r.hidden = map[Kind]map[int64]bool{}
	}
	if r.hidden[kind] == nil {
		r.hidden[kind] = map[int64]bool{}
	}
	if hidden {
		r.hidden[kind][number] = true
	} else {
		delete(r.hidden[kind], number)
	}
	s.version++
}

// Alerts returns a copy of a repository's alerts of kind.
func (s *Server) Alerts(repoID int64, kind Kind) []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[repoID]; r != nil {
		return slices.Clone(r.alerts[kind])
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetLatency sets the delay added to every request.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRateLimit sets an installation's budget (0: the App's) to remaining
// requests until resetIn from now; then it refills to Options.RateLimit.
func (s *Server) SetRateLimit(installationID int64, remaining int, resetIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.budgets[installationID] = &budget{limit: s.opts.RateLimit, remaining: remaining, reset: ceilSecond(time.Now().Add(resetIn))}
}

// RevokeTokens invalidates every installation token issued so far (as an
// early expiry or a revocation would); their next use gets 401 "Bad credentials".
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ceilSecond rounds t up to a whole second (x-ratelimit-reset has seconds).
func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}
