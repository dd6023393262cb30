package ghtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Delivered is a webhook delivery whose alert the fake should hold: its
// event (code_scanning_alert, dependabot_alert, secret_scanning_alert)
// and its payload.
type Delivered struct {
	Event   string
	Payload json.RawMessage
}

var deliveredKinds = map[string]Kind{"code_scanning_alert": CodeScanning, "dependabot_alert": Dependabot, "secret_scanning_alert": SecretScanning}

// AddDelivered makes the repositories and alerts of deliveries exist, as
// if GitHub had sent them: each payload's repository (with its id, in an
// installation on its owner's account, made when missing) holds the
// payload's alert, in the state of the latest delivery of that alert (by
// the alert's own timestamps). A full pull then finds what the deliveries
// said instead of marking it REMOVED. Two repositories of one name (the
// samples have several Codertocat/Hello-World) are told apart by a suffix
// on the later ones' names. Payloads without an alert and a repository are
// skipped. It returns the repositories it made.
func (s *Server) AddDelivered(ds []Delivered) []Repository {
	type key struct {
		repo   int64
		kind   Kind
		number int64
	}
	type latest struct {
		at    time.Time
		alert json.RawMessage
		a     Alert
	}
	var made []Repository
	repos := map[int64]Repository{}
	alerts := map[key]latest{}
	var order []key
	for _, d := range ds {
		kind, ok := deliveredKinds[d.Event]
		if !ok {
			continue
		}
		var raw struct {
			Repository json.RawMessage `json:"repository"`
		}
		var p struct {
			Alert      json.RawMessage `json:"alert"`
			Repository *struct {
				ID       int64  `json:"id"`
				Name     string `json:"name"`
				FullName string `json:"full_name"`
				Private  bool   `json:"private"`
				Owner    struct {
					Login string `json:"login"`
					Type  string `json:"type"`
				} `json:"owner"`
			} `json:"repository"`
		}
		if json.Unmarshal(d.Payload, &p) != nil || p.Repository == nil || p.Repository.ID == 0 || len(p.Alert) == 0 || json.Unmarshal(d.Payload, &raw) != nil {
			continue
		}
		var f struct {
			Number     int64      `json:"number"`
			State      *string    `json:"state"`
			Resolution string     `json:"resolution"`
			CreatedAt  *time.Time `json:"created_at"`
			UpdatedAt  *time.Time `json:"updated_at"`
			FixedAt    *time.Time `json:"fixed_at"`
			Dismissed  *time.Time `json:"dismissed_at"`
			ResolvedAt *time.Time `json:"resolved_at"`
		}
		if json.Unmarshal(p.Alert, &f) != nil || f.Number == 0 {
			continue
		}
		r, ok := repos[p.Repository.ID]
		if !ok {
			var err error
			if r, err = s.deliveredRepository(p.Repository.ID, p.Repository.Owner.Login, p.Repository.Owner.Type, p.Repository.Name, p.Repository.Private, raw.Repository); err != nil {
				continue
			}
			repos[r.ID] = r
			made = append(made, r)
		}
		a := Alert{Number: f.Number, State: "open", Resolution: f.Resolution}
		if f.State != nil {
			a.State = *f.State
		} else if kind == SecretScanning && f.Resolution != "" {
			a.State = "resolved"
		}
		var at time.Time
		for _, t := range []*time.Time{f.CreatedAt, f.UpdatedAt, f.FixedAt, f.Dismissed, f.ResolvedAt} {
			if t != nil && t.After(at) {
				at = *t
			}
		}
		if f.CreatedAt != nil {
			a.CreatedAt = *f.CreatedAt
		}
		a.UpdatedAt = at
		k := key{r.ID, kind, f.Number}
		if old, seen := alerts[k]; !seen || !at.Before(old.at) {
			if !seen {
				order = append(order, k)
			}
			alerts[k] = latest{at: at, alert: p.Alert, a: a}
		}
	}
	for _, k := range order {
		l := alerts[k]
		var doc map[string]any
		if json.Unmarshal(l.alert, &doc) != nil {
			continue
		}
		// The REST state of a webhook whose alert has none.
		doc["state"] = l.a.State
		raw, err := json.Marshal(doc)
		if err != nil {
			continue
		}
		l.a.Raw = raw
		s.PutAlert(k.repo, k.kind, l.a)
	}
	return made
}

// deliveredRepository returns the repository id, made with that id in the
// installation on owner's account (made when missing) when the fake has
// none; a name another repository holds gets a suffix. Listings show it as
// the delivery did (raw, with the suffixed name where it has one), so
// that a pull reads the same repository as the webhook.
func (s *Server) deliveredRepository(id int64, owner, ownerType, name string, private bool, raw json.RawMessage) (Repository, error) {
	s.mu.Lock()
	if r := s.repos[id]; r != nil {
		defer s.mu.Unlock()
		return r.Repository, nil
	}
	var inst int64
	for _, iid := range s.installOrder {
		if in := s.installs[iid]; strings.EqualFold(in.Account, owner) {
			inst = iid
		}
	}
	s.mu.Unlock()
	if owner == "" || name == "" {
		return Repository{}, fmt.Errorf("ghtest: a delivered repository without owner or name")
	}
	if inst == 0 {
		if ownerType != "Organization" {
			ownerType = "User"
		}
		inst = s.AddInstallation(owner, ownerType).ID
	}
	s.mu.Lock()
	account := s.installs[inst].Account
	free := name
	for n := 2; s.reposByName[strings.ToLower(account+"/"+free)] != nil; n++ {
		free = fmt.Sprintf("%s-%d", name, n)
	}
	s.mu.Unlock()
	r := s.AddRepository(inst, free, private)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Give it the delivered id.
	rs := s.repos[r.ID]
	delete(s.repos, r.ID)
	in := s.installs[inst]
	in.repoIDs = slices.DeleteFunc(in.repoIDs, func(x int64) bool { return x == r.ID })
	rs.ID = id
	if err := s.fillRepository(rs); err != nil {
		return Repository{}, err
	}
	if full := deliveredJSON(raw, rs.Name, rs.FullName); full != nil {
		rs.full = full
	}
	s.repos[id] = rs
	s.reposByName[strings.ToLower(rs.FullName)] = rs
	in.repoIDs = append(in.repoIDs, id)
	s.version++
	return rs.Repository, nil
}

// deliveredJSON is a delivery's repository object with the name the fake
// gave it; nil when it is not an object.
func deliveredJSON(raw json.RawMessage, name, fullName string) []byte {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var old struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &old) == nil && old.Name == name {
		return raw
	}
	str := func(v string) json.RawMessage { b, _ := json.Marshal(v); return b }
	m["name"], m["full_name"] = str(name), str(fullName)
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}
