package processor

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// TestImportOfTwoScansDeliveredAgain: an import of two scans (runs of two
// tools) delivered again is known from its first scan's record, which is
// written last: nothing is applied or published again, and the status
// counts the whole import unchanged.
func TestImportOfTwoScansDeliveredAgain(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, sample(t, "code_scanning_alert", "created.payload.json")))
	e.waitDrained()
	body := []byte(`{"version":"2.1.0","runs":[
	 {"tool":{"driver":{"name":"Alpha Scanner"}},"results":[{"ruleId":"A1","message":{"text":"a"}},{"ruleId":"A2","message":{"text":"a"}}]},
	 {"tool":{"driver":{"name":"Beta Scanner"}},"results":[{"ruleId":"B1","message":{"text":"b"}}]}]}`)
	p := imports.Params{Format: imports.FormatSARIF, Repository: "Codertocat/Hello-World", Tool: "Alpha Scanner", ScannedAt: "2026-11-21T08:30:00Z",
		Complete: true, FromFile: imports.FromFile{Tool: true, Category: true}, Scans: 2}
	id := imports.ID(p, body)
	deliver := func(nonce string) {
		msg := imports.Message(id, p, body, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
		msg.Header.Set(stream.HeaderMsgID, "import:"+id+nonce)
		if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		e.waitDrained()
	}
	deliver("")
	if st := e.importStatus(id); st.Findings != (imports.Counts{New: 3}) || st.Results != 3 || st.Tool != "Alpha Scanner, Beta Scanner" {
		t.Fatalf("first delivery: %+v", st)
	}
	msgs := len(e.messages(stream.FindingsStream, stream.FindingSubject(finding.SAST, helloWorld)))
	deliver("-again")
	if st := e.importStatus(id); st.Findings != (imports.Counts{Unchanged: 3}) || st.Results != 3 {
		t.Errorf("delivered again: %+v", st)
	}
	if n := len(e.messages(stream.FindingsStream, stream.FindingSubject(finding.SAST, helloWorld))); n != msgs {
		t.Errorf("delivered again: %d more finding messages", n-msgs)
	}
}
