package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"convpipe/pipeline/rules"

	"convpipe/pipeline"
)

// The ways of sending (sink.kind).
const (
	// KindAPI sends one request per conversion (the default).
	KindAPI = "api"
	// KindBatch writes batch files and uploads them over SFTP.
	KindBatch = "batch"
)

// DefaultPerFile is how many orders one batch file takes by default.
const DefaultPerFile = 10000

// BatchConfig configures the batch way of sending (sink.batch).
type BatchConfig struct {
	// PerFile is how many orders one file takes at most (default 10,000;
	// impact documents no limit).
	PerFile int `yaml:"per_file"`
	// SFTP is the drop folder the files are uploaded to.
	SFTP SFTPConfig `yaml:"sftp"`
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c BatchConfig) WithDefaults() BatchConfig {
	if c.PerFile == 0 {
		c.PerFile = DefaultPerFile
	}
	return c
}

// Validate checks c (with its defaults), naming the bad field; it does not
// need the credentials, which NewBatch reads.
func (c BatchConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.PerFile < 1 {
		errs = append(errs, errors.New("sink.batch.per_file: must be > 0"))
	}
	if c.SFTP.Address == "" {
		errs = append(errs, errors.New("sink.batch.sftp.address: required to send by batch files (host:port of impact's SFTP drop)"))
	}
	if c.SFTP.User == "" {
		errs = append(errs, errors.New("sink.batch.sftp.user: required to send by batch files"))
	}
	if c.SFTP.KnownHosts == "" && c.SFTP.HostKey == "" {
		errs = append(errs, errors.New("sink.batch.sftp: known_hosts or host_key is required: the server's host key is always checked"))
	}
	return errors.Join(errs...)
}

// Batch sends conversions as batch files uploaded over SFTP: the batch
// way of pipeline.BatchSink.
type Batch struct {
	perFile int
	up      *Uploader
	now     func() time.Time
}

var _ pipeline.BatchSink = (*Batch)(nil)

// NewBatch checks cfg and reads the SFTP credentials from the environment
// (getenv is os.Getenv when nil).
func NewBatch(cfg BatchConfig, getenv func(string) string) (*Batch, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	up, err := NewUploader(cfg.SFTP, getenv)
	if err != nil {
		return nil, err
	}
	return &Batch{perFile: cfg.PerFile, up: up, now: time.Now}, nil
}

// PerFile is how many orders one file takes at most.
func (b *Batch) PerFile() int { return b.perFile }

// Encode writes convs into one batch file (EncodeBatch). A conversion the
// file cannot carry (dated further back than impact processes batch
// lines, 88 days or 398 with MediaId; a value with a line break) gets a
// failed outcome with the reason: it is left to send through the API.
func (b *Batch) Encode(convs []*pipeline.Conversion) (*pipeline.BatchFile, []pipeline.Outcome) {
	var outs []pipeline.Outcome
	fail := func(k pipeline.Key, m pipeline.Message) {
		m.Text += " (send it with --via api)"
		outs = append(outs, pipeline.Outcome{Key: k, State: pipeline.StateFailed, Messages: []pipeline.Message{m}})
	}
	now := b.now()
	carried := make([]*pipeline.Conversion, 0, len(convs))
	for _, c := range convs {
		if m, old := tooOldForBatch(c, now); old {
			fail(c.Key, m)
			continue
		}
		carried = append(carried, c)
	}
	f, problems := EncodeBatch(carried)
	for _, p := range problems {
		fail(p.Key, p.Message)
	}
	return f, outs
}

// tooOldForBatch says whether impact would not process c's batch line for
// its age.
func tooOldForBatch(c *pipeline.Conversion, now time.Time) (pipeline.Message, bool) {
	v, _ := c.Get("EventDate")
	t, r := rules.ParseDate(v)
	media, _ := c.Get("MediaId")
	if r != rules.None || !rules.BatchTooOld(t, now, media != "") {
		return pipeline.Message{}, false
	}
	limit := "88"
	if media != "" {
		limit = "398"
	}
	return pipeline.Message{Field: "EventDate", Value: v, Text: fmt.Sprintf("dated %d days ago: impact does not process a batch line older than %s days", int(now.Sub(t).Hours()/24), limit)}, true
}

// Upload puts f into the drop folder unless it, or impact's answer to
// it, is there; with a nil f it only connects and lists the folder. A
// wrong host key is fatal (pipeline.ErrFatal): no upload
// can succeed, and so are credentials the server refuses.
func (b *Batch) Upload(ctx context.Context, f *pipeline.BatchFile) (bool, error) {
	files := []*BatchFile{f}
	if f == nil {
		files = nil
	}
	done, err := b.up.Upload(ctx, files)
	if err != nil {
		if errors.Is(err, ErrHostKey) || strings.Contains(err.Error(), "unable to authenticate") {
			return false, fmt.Errorf("%w: %w", pipeline.ErrFatal, err)
		}
		return false, err
	}
	return len(done) == 1 && done[0].Already, nil
}
