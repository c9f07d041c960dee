package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/sources"
)

// common holds the flags that every command reading an export shares.
type common struct {
	configPath string
	source     string
	since      string
	until      string
	logFormat  string
	logLevel   string
	// The backfill's guards: the orders' own dates.
	allowOld    bool
	eventsSince string
	eventsUntil string
}

func (c *common) register(fs *pflag.FlagSet) {
	fs.StringVarP(&c.configPath, "config", "c", "", "configuration file (YAML; see configs/)")
	fs.StringVar(&c.source, "source", "", "where the export is: a file, folder or glob, or s3://bucket/prefix/ (overrides source.location)")
	fs.StringVar(&c.since, "since", "", "read only objects dated at or after this date (2026-11-01) or RFC 3339 time (overrides source.since)")
	fs.StringVar(&c.until, "until", "", "read only objects dated before this time; a date includes its whole day (overrides source.until)")
	fs.StringVar(&c.logFormat, "log-format", "", "log format: text or json (overrides run.log_format)")
	fs.StringVar(&c.logLevel, "log-level", "", "log level: debug, info, warn or error (overrides run.log_level)")
	fs.BoolVar(&c.allowOld, "allow-old", false, "send orders older than mapping.max_event_age (default 88 days) for this run")
	fs.StringVar(&c.eventsSince, "events-since", "", "take only orders whose EventDate is at or after this date (2026-09-01) or RFC 3339 time; the others are counted as outside the window")
	fs.StringVar(&c.eventsUntil, "events-until", "", "take only orders whose EventDate is before this time; a date includes its whole day")
}

// load reads the configuration and applies the flags over it.
func (c *common) load() (Config, error) {
	cfg, err := loadConfig(c.configPath)
	if err != nil {
		return cfg, err
	}
	if c.source != "" {
		cfg.Source.Location = c.source
		cfg.setByFlag("source.location", "--source")
	}
	if c.since != "" {
		cfg.Source.Since = c.since
		cfg.setByFlag("source.since", "--since")
	}
	if c.until != "" {
		cfg.Source.Until = c.until
		cfg.setByFlag("source.until", "--until")
	}
	if c.logFormat != "" {
		cfg.Run.LogFormat = c.logFormat
		cfg.setByFlag("run.log_format", "--log-format")
	}
	if c.logLevel != "" {
		cfg.Run.LogLevel = c.logLevel
		cfg.setByFlag("run.log_level", "--log-level")
	}
	cfg.Mapping.AllowOld = c.allowOld
	if cfg.events, err = c.eventWindow(); err != nil {
		return cfg, configError{err}
	}
	return cfg, nil
}

// eventWindow parses --events-since and --events-until.
func (c *common) eventWindow() (engine.EventWindow, error) {
	var w engine.EventWindow
	var err error
	if w.Since, err = sources.ParseBound(c.eventsSince, false); err != nil {
		return w, fmt.Errorf("--events-since: %w", err)
	}
	if w.Until, err = sources.ParseBound(c.eventsUntil, true); err != nil {
		return w, fmt.Errorf("--events-until: %w", err)
	}
	if !w.Since.IsZero() && !w.Until.IsZero() && !w.Until.After(w.Since) {
		return w, fmt.Errorf("--events-until %s is not after --events-since %s", c.eventsUntil, c.eventsSince)
	}
	return w, nil
}

// newLogger returns the structured logger the configuration asks for.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// buildReading builds the source and the mapper of a configuration.
func buildReading(ctx context.Context, cfg Config) (pipeline.Source, *mapping.Mapping, error) {
	m, err := mapping.New(cfg.Mapping)
	if err != nil {
		return nil, nil, configError{fmt.Errorf("mapping: %w", err)}
	}
	src, err := sources.New(ctx, cfg.Source)
	if err != nil {
		return nil, nil, err
	}
	return listedSource{Source: src, location: cfg.Source.Location}, m, nil
}

// listedSource is the configured source, whose listing names a local
// location that does not exist plainly (a *missingSourceError) instead of
// failing with a bare stat error.
type listedSource struct {
	pipeline.Source
	location string
}

// Objects lists the source's objects, as the source does.
func (s listedSource) Objects(ctx context.Context) ([]pipeline.Object, error) {
	objs, err := s.Source.Objects(ctx)
	if err != nil && errors.Is(err, fs.ErrNotExist) && !strings.HasPrefix(s.location, "s3://") && !strings.ContainsAny(s.location, `*?[\`) {
		// Not an object that vanished while listing: the location itself.
		if _, serr := os.Stat(s.location); errors.Is(serr, fs.ErrNotExist) {
			return nil, &missingSourceError{location: s.location, err: err}
		}
	}
	return objs, err
}

// missingSourceError is a local source location that does not exist: a
// fatal error of the run, whatever run.allow_empty says.
type missingSourceError struct {
	location string
	err      error
}

func (e *missingSourceError) Error() string {
	return fmt.Sprintf("source %q does not exist", e.location)
}

func (e *missingSourceError) Unwrap() error { return e.err }
