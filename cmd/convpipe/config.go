package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"convpipe/ledger"
	"convpipe/mapping"
	"convpipe/pipeline/correct"
	"convpipe/pipeline/engine"
	"convpipe/pipeline/group"
	"convpipe/pipeline/reconcile"
	"convpipe/sinks"
	"convpipe/sources"
)

// Config is the whole configuration file: one section per package, each
// owning its own types and checks, and the run's own settings.
type Config struct {
	Source  sources.Config `yaml:"source"`
	Mapping mapping.Config `yaml:"mapping"`
	Group   group.Config   `yaml:"group"`
	Sink    sinks.Config   `yaml:"sink"`
	Ledger  ledger.Config  `yaml:"ledger"`
	Run     RunConfig      `yaml:"run"`
	// Reconcile is when and how much reconciling asks impact.
	Reconcile reconcile.Config `yaml:"reconcile"`
	// Corrections configures `corrections apply` and run --corrections.
	Corrections correct.Config `yaml:"corrections"`

	// sink is Sink resolved by validate: the run opens its sink from it,
	// without parsing or defaulting anything again.
	sink sinks.Settings
	// events is the event window of --events-since and --events-until.
	events engine.EventWindow
	// file places errors in the file the configuration was read from.
	file *configFile
}

// RunConfig holds the settings of a run that belong to no single stage.
type RunConfig struct {
	// Queue bounds how many mapped orders may wait for a sender: how far
	// reading runs ahead of sending. Default 4 × sink.workers.
	Queue int `yaml:"queue"`
	// Grace is how long in-flight requests may take to finish once the
	// run is told to stop. Default 30s.
	Grace time.Duration `yaml:"grace"`
	// MaxDuration stops the run after this long (like --max-duration).
	MaxDuration time.Duration `yaml:"max_duration"`
	// Deadline stops the run at this clock time, "HH:MM" or RFC 3339
	// (like --deadline).
	Deadline string `yaml:"deadline"`
	// ResultsDir is where each run writes its results CSV: a folder
	// (created if missing), or an s3://bucket/prefix/ (uploaded with the
	// source's s3 settings). Default: next to the ledger. A results file
	// that cannot be written makes the run exit 3.
	ResultsDir string `yaml:"results_dir"`
	// AllowEmpty makes a run whose source selects no object (an empty
	// folder, nothing in the date window) exit 0; by default it needs
	// attention (exit 3). A location that does not exist is an error
	// either way.
	AllowEmpty bool `yaml:"allow_empty"`
	// LogFormat is "text" (default) or "json".
	LogFormat string `yaml:"log_format"`
	// LogLevel is "debug", "info" (default), "warn" or "error".
	LogLevel string `yaml:"log_level"`
	// Progress is "auto" (a bar on a terminal, log lines otherwise), "bar",
	// "log" or "off".
	Progress string `yaml:"progress"`
	// ProgressInterval is how often progress is logged when not on a
	// terminal. Default 30s.
	ProgressInterval time.Duration `yaml:"progress_interval"`
}

func (c RunConfig) progressInterval() time.Duration {
	if c.ProgressInterval > 0 {
		return c.ProgressInterval
	}
	return 30 * time.Second
}

// Validate names the first bad field.
func (c RunConfig) Validate() error {
	switch {
	case c.Queue < 0:
		return errors.New("run.queue: must be >= 0")
	case c.Grace < 0:
		return errors.New("run.grace: must be >= 0")
	case c.MaxDuration < 0:
		return errors.New("run.max_duration: must be >= 0")
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("run.log_format: %q is not text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("run.log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.Progress {
	case "", "auto", "bar", "log", "off":
	default:
		return fmt.Errorf("run.progress: %q is not auto, bar, log or off", c.Progress)
	}
	if c.Deadline != "" {
		if _, err := parseDeadline(c.Deadline, time.Now()); err != nil {
			return fmt.Errorf("run.deadline: %w", err)
		}
	}
	return nil
}

// configError marks a problem with the configuration or the command line:
// exit code 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// loadConfig reads and decodes the configuration file; unknown keys are
// errors. It does not validate. Its errors, and those of validate, name
// the file, the line and the dotted key.
func loadConfig(path string) (Config, error) {
	var c Config
	if path == "" {
		return c, configError{errors.New("--config is required")}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, configError{fmt.Errorf("config: %w", err)}
	}
	c.file = &configFile{name: path, flags: map[string]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return c, c.file.errorf([]error{err})
	}
	if len(doc.Content) > 0 {
		c.file.root = doc.Content[0]
		if errs := checkKeys(c.file.root, reflect.TypeFor[Config](), ""); len(errs) > 0 {
			return c, c.file.errorf(errs)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return c, c.file.errorf([]error{errors.New(strings.Join(te.Errors, "\n"))})
		}
		return c, c.file.errorf([]error{err})
	}
	if c.Ledger.Path == "" {
		c.Ledger.Path = ledger.DefaultPath
	}
	c.Ledger = c.Ledger.WithEnv(os.Getenv)
	c.Sink = c.Sink.WithDefaults()
	c.Group = c.Group.WithDefaults()
	return c, nil
}

// setByFlag records that a flag set the dotted key, so that an error in
// its value names the flag instead of a line of the file.
func (c *Config) setByFlag(key, flag string) {
	if c.file != nil {
		c.file.flags[key] = flag
	}
}

// validate checks every section, the sink's included, as a run does,
// naming the bad field and its line, and resolves the sink's settings
// into c.sink.
func (c *Config) validate() error {
	checks := []func() error{c.Source.Validate, c.Mapping.Validate, c.Group.Validate, c.Ledger.Validate, c.Run.Validate, c.Reconcile.Validate, c.Corrections.Validate,
		func() (err error) {
			c.sink, err = c.Sink.Resolve()
			return err
		}}
	for _, check := range checks {
		if err := check(); err != nil {
			if c.file == nil {
				return configError{err}
			}
			return c.file.errorf([]error{err})
		}
	}
	return nil
}

// parseDeadline reads a clock time "HH:MM" (the next such time from now,
// local time) or an RFC 3339 time.
func parseDeadline(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			d := time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), t.Second(), 0, now.Location())
			if !d.After(now) {
				d = d.AddDate(0, 0, 1)
			}
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a clock time (06:30) nor an RFC 3339 time", s)
}
