package transform

// RepositoryFacts are the facts of an event's repository object that the
// scope decision and an asset's ownership and tags need, read with the
// same scanner as the maps (it skips the rest of the payload).
type RepositoryFacts struct {
	ID       int64
	FullName string
	Archived bool
	Fork     bool
	Topics   []string
	// Properties is repository.custom_properties as decoded JSON: name →
	// string, []any of strings, or nil. It is nil when the repository
	// object has no custom_properties at all (HasProperties false), and
	// empty when it has an empty object.
	Properties    map[string]any
	HasProperties bool
}

// RepositoryOf reads the repository facts of an event payload. Errors
// wrap ErrInvalid.
func RepositoryOf(payload []byte) (RepositoryFacts, error) {
	b := &builder{root: newTrie()}
	id := b.add(mustSegs("repository.id"))
	name := b.add(mustSegs("repository.full_name"))
	archived := b.add(mustSegs("repository.archived"))
	fork := b.add(mustSegs("repository.fork"))
	topics := b.add(mustSegs("repository.topics"))
	props := b.add(mustSegs("repository.custom_properties"))
	repoSeen := b.object("repository")
	s := scanner{data: payload, vals: make([]any, b.finish()), seen: make([]bool, b.nseen)}
	if err := s.run(b.root); err != nil {
		return RepositoryFacts{}, invalid("repository: %v", err)
	}
	if !s.seen[repoSeen] {
		return RepositoryFacts{}, invalid("no repository object")
	}
	var f RepositoryFacts
	f.ID, _ = intOf(s.vals[id.slot])
	f.FullName, _ = s.vals[name.slot].(string)
	f.Archived, _ = s.vals[archived.slot].(bool)
	f.Fork, _ = s.vals[fork.slot].(bool)
	if ts, ok := s.vals[topics.slot].([]any); ok {
		for _, t := range ts {
			if str, ok := t.(string); ok {
				f.Topics = append(f.Topics, str)
			}
		}
	}
	f.Properties, f.HasProperties = s.vals[props.slot].(map[string]any)
	return f, nil
}
