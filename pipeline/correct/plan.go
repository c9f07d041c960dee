package correct

import "convpipe/pipeline"

// Plan decides how a newly detected correction c joins the order's
// earlier ones: not at all when one for the same change is recorded (the
// same target payload, or a reversal after a reversal), or the action was
// reversed (a reversal is final); otherwise c gets the next sequence
// number, and the earlier corrections never sent (planned) are
// superseded. It returns what to write, in order, and false when nothing
// is to be written.
func Plan(c pipeline.Correction, earlier []pipeline.Correction) ([]pipeline.Correction, bool) {
	seq := 0
	for _, e := range earlier {
		seq = max(seq, e.Seq)
		switch {
		case e.State == pipeline.CorrectionSuperseded:
		case e.Kind == pipeline.CorrectReversal && e.State != pipeline.CorrectionRejected:
			return nil, false // reversed, or to be: final
		case c.Kind != pipeline.CorrectReversal && e.Kind != pipeline.CorrectReversal && e.ToHash == c.ToHash:
			return nil, false // this change is recorded already
		}
	}
	var out []pipeline.Correction
	for _, e := range earlier {
		if e.State == pipeline.CorrectionPlanned {
			e.State = pipeline.CorrectionSuperseded
			out = append(out, e)
		}
	}
	c.Seq = seq + 1
	return append(out, c), true
}
