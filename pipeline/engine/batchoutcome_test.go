package engine

import (
	"strings"
	"testing"

	"convpipe/pipeline"
)

func TestBatchOutcome(t *testing.T) {
	key := func(id string) pipeline.Key { return pipeline.Key{EventType: "7", OrderID: id} }
	lines := []pipeline.BatchLine{
		{Key: key("A"), File: "f.csv", First: 2, Last: 3},
		{Key: key("B"), File: "f.csv", First: 4, Last: 4},
		{Key: key("C"), File: "f.csv", First: 5, Last: 6},
	}
	entries := func(state pipeline.State, ids ...string) []pipeline.Entry {
		var es []pipeline.Entry
		for _, id := range ids {
			es = append(es, pipeline.Entry{Key: key(id), State: state, SubmissionID: "f.csv"})
		}
		return es
	}
	rec := pipeline.BatchRecord{Name: "f.csv", State: pipeline.BatchUploaded}
	tests := []struct {
		name  string
		st    pipeline.BatchStatus
		errs  []pipeline.BatchLineError
		es    []pipeline.Entry
		state pipeline.BatchState
		// want is each written entry as "id:state:text fragment".
		want []string
	}{
		{name: "all taken", st: pipeline.BatchStatus{Found: true, Status: "Complete", BatchID: "B1", TotalRecords: 5},
			es: entries(pipeline.StateAccepted, "A", "B", "C"), state: pipeline.BatchProcessed},
		{name: "a line in error rejects its order", st: pipeline.BatchStatus{Found: true, Status: "Complete", BatchID: "B1", TotalRecords: 5, TotalErrors: 2},
			errs: []pipeline.BatchLineError{{Line: 3, Reason: "ItemQuantity1: not a number"}, {Line: 6, Reason: "CONV_DUPLICATE"}},
			es:   entries(pipeline.StateAccepted, "A", "B", "C"), state: pipeline.BatchProcessed,
			want: []string{"A:rejected:ItemQuantity1", "C:rejected:CONV_DUPLICATE"}},
		{name: "pending after a crash, then processed", st: pipeline.BatchStatus{Found: true, Status: "Completed", TotalRecords: 5},
			es: entries(pipeline.StatePending, "B"), state: pipeline.BatchProcessed, want: []string{"B:accepted:"}},
		{name: "refused as a whole", st: pipeline.BatchStatus{Found: true, Status: "Failed", Message: "not UTF-8"},
			es: entries(pipeline.StateAccepted, "A", "C"), state: pipeline.BatchRefused,
			want: []string{"A:failed:not UTF-8", "C:failed:sends this order again"}},
		{name: "only the orders that still name the file", st: pipeline.BatchStatus{Found: true, Status: "Failed"},
			es: entries(pipeline.StateAccepted, "B"), state: pipeline.BatchRefused, want: []string{"B:failed:no reason given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, writes := batchOutcome(rec, tt.st, lines, tt.errs, tt.es)
			if out.State != tt.state || out.TotalErrors != tt.st.TotalErrors || out.BatchID != tt.st.BatchID {
				t.Errorf("record %+v", out)
			}
			if len(writes) != len(tt.want) {
				t.Fatalf("writes %+v, want %v", writes, tt.want)
			}
			for i, w := range tt.want {
				p := strings.SplitN(w, ":", 3)
				e := writes[i]
				text := ""
				for _, m := range e.Messages {
					text += m.Field + " " + m.Text
				}
				if e.Key.OrderID != p[0] || string(e.State) != p[1] || !strings.Contains(text, p[2]) {
					t.Errorf("write %d: %+v, want %s", i, e, w)
				}
			}
		})
	}
	for _, st := range []pipeline.BatchStatus{{}, {Found: true, Status: "Queued"}, {Found: true, Status: "In Progress"}, {Found: true, Status: "Processing"}} {
		if batchProcessed(st) != batchWaiting {
			t.Errorf("%+v is not waiting", st)
		}
	}
}
