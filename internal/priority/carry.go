package priority

import "github.com/ghas-relay/ghas-relay/internal/finding"

// Carry gives next the corroboration of stored, the document it replaces,
// when both name the same weakness (the same non-empty correlationKey);
// otherwise next is not corroborated. A document built from an event
// cannot know whether another source reports its weakness: the stored
// document does (the processor keeps it current, see docs/decisions.md),
// and the processor decides again when the finding's status, source or
// correlation key changes.
func Carry(next, stored *finding.Document) {
	nf := next.Finding()
	if nf == nil {
		return
	}
	nf.Corroborated = false
	if stored == nil {
		return
	}
	if sf := stored.Finding(); sf != nil && nf.CorrelationKey != "" && sf.CorrelationKey == nf.CorrelationKey {
		nf.Corroborated = sf.Corroborated
	}
}
