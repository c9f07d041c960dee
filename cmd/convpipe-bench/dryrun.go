package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"go.yaml.in/yaml/v3"

	"convpipe/ledger"
	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/pipeline/group"
	"convpipe/sinks"
	"convpipe/sources"
)

// readConfig is the part of convpipe's configuration file that reading
// needs; the other sections are ignored.
type readConfig struct {
	Source  sources.Config `yaml:"source"`
	Mapping mapping.Config `yaml:"mapping"`
	Group   group.Config   `yaml:"group"`
	Sink    sinks.Config   `yaml:"sink"`
	Ledger  ledger.Config  `yaml:"ledger"`
}

func loadReadConfig(path string) (readConfig, error) {
	var c readConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// reading sets the collector as convpipe does and builds the mapping and
// the source of cfg, as `convpipe run` builds them.
func reading(ctx context.Context, cfg readConfig) (pipeline.Source, *mapping.Mapping, error) {
	convpipeGC(cfg.Group.Budget())
	m, err := mapping.New(cfg.Mapping)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping: %w", err)
	}
	src, err := sources.New(ctx, cfg.Source)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	return src, m, nil
}

// startCPUProfile starts the CPU profiler writing to path, when path is
// set; stop ends the profile and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeAllocProfile writes the allocations made so far to path.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// convpipeGC sets the collector as `convpipe run` sets it (cmd/convpipe's
// tuneGC and limitMemory, which a main package cannot export): a soft
// memory limit of the grouping budget plus 64 MiB and, under it, GOGC=800
// (GOGC=400 when GOMEMLIMIT is set instead), each unless the environment
// sets it. Keep the two in step.
func convpipeGC(budget group.ByteSize) {
	gogc := 400
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(budget) + 64<<20)
		gogc = 800
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gogc)
	}
}

// dryRunMain is the "discard" subcommand: what `convpipe run --dry-run`
// does, in this process, with the collector set as convpipe sets it, with
// sinks.Discard instead of the JSON-lines dry-run sink, and no ledger. It prints the rows and orders read.
func dryRunMain(args []string) error {
	fs := flag.NewFlagSet("discard", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "convpipe configuration file")
	source := fs.String("source", "", "overrides source.location")
	mode := fs.String("group", "", "overrides group.mode")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile (every allocation sampled, as go test -memprofile) to this file")
	summaryJSON := fs.String("summary-json", "", "write the run's summary as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadReadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *source != "" {
		cfg.Source.Location = *source
	}
	if *mode != "" {
		cfg.Group.Mode = group.Mode(*mode)
	}
	ctx := context.Background()
	src, m, err := reading(ctx, cfg)
	if err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if *memProfile != "" {
		runtime.MemProfileRate = 1
	}
	sink := &sinks.Discard{}
	sum, err := engine.Run(ctx, engine.Options{Source: src, Mapper: m, Mode: engine.DryRun, Sink: sink, Group: cfg.Group, Workers: 4})
	if err != nil {
		return err
	}
	if *memProfile != "" {
		if err := writeAllocProfile(*memProfile); err != nil {
			return err
		}
	}
	fmt.Printf("rows=%d orders=%d sent=%d file_errors=%d\n", sum.Total.Rows, sum.Total.Orders, sink.Count(), sum.FileErrors)
	if *summaryJSON != "" {
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		return os.WriteFile(*summaryJSON, b, 0o644)
	}
	return nil
}

// sendMain is the "send" subcommand: `convpipe run` in this process (the
// configured sink and ledger), for profiling the sending path.
func sendMain(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "convpipe configuration file")
	dur := fs.Duration("max-duration", 10*time.Second, "stop reading after this long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	all := fs.Bool("all", false, "read objects the ledger has as processed too (convpipe run --all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadReadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	src, m, err := reading(ctx, cfg)
	if err != nil {
		return err
	}
	sink, err := sinks.New(cfg.Sink, "bench", nil)
	if err != nil {
		return err
	}
	defer sink.Close()
	// The account whose entries the run reads, as convpipe run's: the
	// credentials' (IMPACT_ACCOUNT_SID).
	led, err := ledger.Open(ctx, cfg.Ledger.Path, ledger.Options{Account: os.Getenv("IMPACT_ACCOUNT_SID")})
	if err != nil {
		return err
	}
	defer led.Close()
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	sum, err := engine.Run(ctx, engine.Options{Mode: engine.Send, Source: src, Mapper: m, Sink: sink, Ledger: led, Group: cfg.Group, Workers: cfg.Sink.Workers, RunID: "bench-send", All: *all})
	fmt.Printf("requests=%d accepted=%d\n", sum.Total.Requests, sum.Total.Accepted)
	return err
}
