package main

import (
	"cmp"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"

	"convpipe/pipeline"
	"convpipe/sim"
	"convpipe/sinks"
)

// simulatedSFTP stands for the drop folder of --simulate while the
// configuration is validated; simulateDrop sets the real one.
var simulatedSFTP = sinks.SFTPConfig{Address: "127.0.0.1:22", User: "convpipe", HostKey: "simulated"}

// kind is the way the run sends: --via over sink.kind, api by default.
func (j *runJob) kind() string {
	if j.f.via != "" {
		return j.f.via
	}
	return cmp.Or(j.cfg.Sink.Kind, sinks.KindAPI)
}

// useBatch makes the run send by batch files when its way is batch: the
// files go up over SFTP, and the impact client (opened already) learns
// their outcome. A run through the API refuses a ledger holding batch
// files recorded and not known to be uploaded: their orders would be sent
// twice.
func (j *runJob) useBatch() error {
	if j.led == nil {
		return nil
	}
	if j.kind() != sinks.KindBatch {
		n := 0
		err := j.led.BatchFiles(j.ctx, func(pipeline.BatchRecord) error { n++; return nil }, pipeline.BatchWritten)
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if n > 0 {
			return configError{fmt.Errorf("the ledger holds %d batch files recorded and not known to be uploaded: run with --via batch (or sink.kind: batch) to finish them before sending through the API", n)}
		}
		return nil
	}
	if j.f.dryRun {
		return configError{errors.New("--dry-run sends through the API's dry-run sink: it has no batch way (use `convpipe plan` to see what a batch run would send)")}
	}
	cfg, getenv := j.cfg.Sink.Batch, os.Getenv
	if j.sim != nil {
		var err error
		if cfg, getenv, err = j.simulateDrop(cfg); err != nil {
			return err
		}
	} else if err := cfg.Validate(); err != nil {
		return configError{err}
	}
	b, err := sinks.NewBatch(cfg, getenv)
	if err != nil {
		return configError{err}
	}
	status, ok := j.opt.Sink.(pipeline.BatchStatusReader)
	if !ok {
		return errors.New("the sink cannot read the status of batch files")
	}
	j.opt.Sink, j.opt.Batch, j.opt.BatchStatus = nil, b, status
	j.log.Info("sending by batch files over SFTP", "per_file", b.PerFile(), "address", cfg.SFTP.Address)
	return nil
}

// simulateDrop starts the simulator's SFTP drop folder (--simulate) and
// returns cfg uploading to it, with its generated user key in the
// environment getenv reads.
func (j *runJob) simulateDrop(cfg sinks.BatchConfig) (sinks.BatchConfig, func(string) string, error) {
	dir, err := os.MkdirTemp("", "convpipe-drop-")
	if err != nil {
		return cfg, nil, fmt.Errorf("simulator: %w", err)
	}
	j.onClose(func() { os.RemoveAll(dir) })
	d, err := sim.NewDrop(dir)
	if err != nil {
		return cfg, nil, fmt.Errorf("simulator: %w", err)
	}
	addr, err := d.Start("127.0.0.1:0")
	if err != nil {
		return cfg, nil, fmt.Errorf("simulator: %w", err)
	}
	j.onClose(func() { d.Close() })
	j.sim.ServeDrop(d)
	block, err := ssh.MarshalPrivateKey(d.UserPrivateKey(), "")
	if err != nil {
		return cfg, nil, fmt.Errorf("simulator: %w", err)
	}
	key := string(pem.EncodeToMemory(block))
	cfg.SFTP = sinks.SFTPConfig{Address: addr, User: "convpipe", HostKey: string(ssh.MarshalAuthorizedKey(d.HostKey()))}
	j.log.Info("uploading batch files to the built-in simulator's SFTP drop, not to impact.com", "address", addr)
	return cfg, func(k string) string {
		if k == sinks.EnvSFTPKey {
			return key
		}
		return ""
	}, nil
}
