package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// The deadlines around a run: the scheduler's (activeDeadlineSeconds,
// TimeoutStartSec) must leave the run its --max-duration and run.grace,
// and then at least deadlineSlackMin and at most deadlineSlackMax to
// start, write its results and report, so that convpipe stops itself
// first but a hung run does not outlive its night by much.
const (
	deadlineSlackMin = time.Minute
	deadlineSlackMax = 15 * time.Minute
)

// parseRunArgs parses a command line for `convpipe run` (args[0] is
// "run") with the command's own flag set, as the binary would: every
// flag must exist, and its value parse. It returns the parsed command.
func parseRunArgs(t *testing.T, where string, args []string) *runFlagsView {
	t.Helper()
	if len(args) == 0 || args[0] != "run" {
		t.Errorf("%s: the command is %q, want `convpipe run ...`", where, args)
		return nil
	}
	root := newRootCmd()
	cmd, _, err := root.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	help := cmd.UsageString()
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !strings.Contains(help, "--"+name+" ") {
				t.Errorf("%s: %s is not in `convpipe run --help`", where, a)
			}
		}
	}
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Errorf("%s: `convpipe %s`: %v", where, strings.Join(args, " "), err)
		return nil
	}
	if rest := cmd.Flags().Args(); len(rest) != 0 {
		t.Errorf("%s: arguments %q: `convpipe run` takes none", where, rest)
	}
	v := &runFlagsView{}
	v.maxDuration, _ = cmd.Flags().GetDuration("max-duration")
	v.config, _ = cmd.Flags().GetString("config")
	v.ledger, _ = cmd.Flags().GetString("ledger")
	v.metricsFile, _ = cmd.Flags().GetString("metrics-file")
	v.metricsPush, _ = cmd.Flags().GetString("metrics-push")
	v.deadline, _ = cmd.Flags().GetString("deadline")
	if err := checkPushURL(v.metricsPush); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return v
}

// runFlagsView is what the deployment tests read from a parsed command
// line.
type runFlagsView struct {
	maxDuration                                        time.Duration
	config, ledger, metricsFile, metricsPush, deadline string
}

// checkDeadline checks a scheduler's deadline against the run's
// --max-duration and run.grace.
func checkDeadline(t *testing.T, where string, deadline, maxDuration, grace time.Duration) {
	t.Helper()
	if maxDuration <= 0 {
		t.Errorf("%s: no --max-duration: the run would only be stopped by the scheduler, without its grace", where)
		return
	}
	slack := deadline - maxDuration - grace
	if slack < deadlineSlackMin || slack > deadlineSlackMax {
		t.Errorf("%s: deadline %s for --max-duration %s and run.grace %s: %s left, want %s to %s",
			where, deadline, maxDuration, grace, slack, deadlineSlackMin, deadlineSlackMax)
	}
}

// maxMeasuredRSS is the largest figure in the "Peak RSS" columns of
// docs/benchmarks.md, in bytes.
func maxMeasuredRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mib := regexp.MustCompile(`^([0-9.]+) MiB$`)
	col, best := -1, 0.0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			col = -1
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if i := slices.Index(cells, "Peak RSS"); i >= 0 {
			col = i
			continue
		}
		if col >= 0 && col < len(cells) {
			if m := mib.FindStringSubmatch(cells[col]); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				best = max(best, v)
			}
		}
	}
	if best == 0 {
		t.Fatal("docs/benchmarks.md: no Peak RSS figure found")
	}
	return int64(best * (1 << 20))
}

// k8sFile is one manifest of deploy/kubernetes, decoded strictly (an
// unknown field is an error) into the API's own types.
type k8sFile struct {
	name      string
	kind      string
	cronJob   *batchv1.CronJob
	job       *batchv1.Job
	configMap *corev1.ConfigMap
}

func readK8s(t *testing.T) map[string]*k8sFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	files := map[string]*k8sFile{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(p)
		if bytes.Contains(data, []byte("\n---")) {
			t.Errorf("%s: one object per file", name)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(data, &meta); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		f := &k8sFile{name: name, kind: meta.Kind}
		var obj any
		switch meta.Kind {
		case "CronJob":
			f.cronJob = &batchv1.CronJob{}
			obj = f.cronJob
		case "Job":
			f.job = &batchv1.Job{}
			obj = f.job
		case "ConfigMap":
			f.configMap = &corev1.ConfigMap{}
			obj = f.configMap
		case "PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "Kustomization":
			var k struct {
				APIVersion string   `json:"apiVersion"`
				Kind       string   `json:"kind"`
				Resources  []string `json:"resources"`
			}
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			for _, r := range k.Resources {
				if _, err := os.Stat(filepath.Join(filepath.Dir(p), r)); err != nil {
					t.Errorf("%s: resource %s: %v", name, r, err)
				}
			}
			files[name] = f
			continue
		default:
			t.Errorf("%s: kind %q: the test does not know it", name, meta.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		files[name] = f
	}
	return files
}

// deployedConfig is the configuration in the ConfigMap, loaded and
// validated by convpipe's own code.
func deployedConfig(t *testing.T, cm *corev1.ConfigMap) Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "convpipe.yaml")
	writeFile(t, p, cm.Data["convpipe.yaml"])
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	return cfg
}

// TestKubernetesManifests: every manifest in deploy/kubernetes decodes
// strictly into the Kubernetes API's types; the CronJob and the backfill
// Job run `convpipe run` with flags the binary has, with credentials from
// a Secret, the ledger URL from a Secret, deadlines that leave the run its
// --max-duration, memory sized from the measured peak RSS, and the
// configuration's ledger, results and temporary files on writable
// volumes; the ConfigMap's configuration loads and validates.
func TestKubernetesManifests(t *testing.T) {
	files := readK8s(t)
	cmFile := files["configmap.yaml"]
	if cmFile == nil || cmFile.configMap == nil {
		t.Fatal("deploy/kubernetes/configmap.yaml: missing")
	}
	cfg := deployedConfig(t, cmFile.configMap)
	rss := maxMeasuredRSS(t)
	var sawCron, sawJob bool
	for _, f := range files {
		var spec *batchv1.JobSpec
		switch {
		case f.cronJob != nil:
			sawCron = true
			cj := f.cronJob.Spec
			if cj.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("%s: concurrencyPolicy %q, want Forbid", f.name, cj.ConcurrencyPolicy)
			}
			if cj.StartingDeadlineSeconds == nil || *cj.StartingDeadlineSeconds <= 0 {
				t.Errorf("%s: no startingDeadlineSeconds", f.name)
			}
			spec = &cj.JobTemplate.Spec
		case f.job != nil:
			sawJob = true
			spec = &f.job.Spec
		default:
			continue
		}
		checkJobSpec(t, f.name, spec, cmFile.configMap.Name, cfg, rss)
	}
	if !sawCron || !sawJob {
		t.Errorf("want a CronJob and a backfill Job: CronJob %v, Job %v", sawCron, sawJob)
	}
}

// checkJobSpec checks the Job of a CronJob or of the backfill.
func checkJobSpec(t *testing.T, where string, spec *batchv1.JobSpec, configMap string, cfg Config, rss int64) {
	t.Helper()
	pod := spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want convpipe's alone", where, len(pod.Containers))
	}
	c := pod.Containers[0]
	v := parseRunArgs(t, where, append(slices.Clone(c.Command), c.Args...))
	if v == nil {
		return
	}
	if spec.ActiveDeadlineSeconds == nil {
		t.Errorf("%s: no activeDeadlineSeconds", where)
	} else {
		checkDeadline(t, where+": activeDeadlineSeconds", time.Duration(*spec.ActiveDeadlineSeconds)*time.Second, v.maxDuration, cfg.Run.Grace)
	}
	if v.deadline != "" {
		t.Errorf("%s: --deadline is a clock time in the pod's zone; use --max-duration with activeDeadlineSeconds", where)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= cfg.Run.Grace {
		t.Errorf("%s: terminationGracePeriodSeconds must exceed run.grace %s", where, cfg.Run.Grace)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("%s: restartPolicy %q, want Never (podFailurePolicy needs it)", where, pod.RestartPolicy)
	}
	checkSecrets(t, where, c)
	checkResources(t, where, c.Resources, rss)
	checkMounts(t, where, pod, c, configMap, v, cfg)
}

// checkSecrets: the credentials come from a Secret as a whole, the ledger
// URL from a Secret's key, and no value is written in the manifest.
func checkSecrets(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	fromSecret := false
	for _, e := range c.EnvFrom {
		fromSecret = fromSecret || e.SecretRef != nil
	}
	if !fromSecret {
		t.Errorf("%s: IMPACT_ACCOUNT_SID and IMPACT_AUTH_TOKEN must come from a Secret (envFrom secretRef)", where)
	}
	ledgerURL := false
	for _, e := range c.Env {
		if e.Value != "" && (strings.Contains(e.Name, "TOKEN") || strings.Contains(e.Name, "SID") || strings.Contains(e.Name, "URL")) {
			t.Errorf("%s: %s is written in the manifest; take it from a Secret", where, e.Name)
		}
		if e.Name == "CONVPIPE_LEDGER_URL" {
			ledgerURL = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}
	}
	if !ledgerURL {
		t.Errorf("%s: CONVPIPE_LEDGER_URL must come from a Secret's key", where)
	}
}

// checkResources: requests at least the measured peak RSS, a limit above
// them, a CPU request.
func checkResources(t *testing.T, where string, r corev1.ResourceRequirements, rss int64) {
	t.Helper()
	req, lim := r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
	if req.Value() < rss {
		t.Errorf("%s: memory request %s is below the measured peak RSS %s (docs/benchmarks.md)", where, req.String(), resource.NewQuantity(rss, resource.BinarySI))
	}
	if req.Value() > 2*rss {
		t.Errorf("%s: memory request %s is over twice the measured peak RSS %d MiB", where, req.String(), rss>>20)
	}
	if lim.Cmp(req) <= 0 {
		t.Errorf("%s: memory limit %s not above the request %s", where, lim.String(), req.String())
	}
	if cpu := r.Requests[corev1.ResourceCPU]; cpu.IsZero() {
		t.Errorf("%s: no CPU request", where)
	}
}

// checkMounts: the configuration file comes from the ConfigMap; what the
// run writes (the ledger, the results, temporary files, --summary-json,
// --metrics-file) lands on a writable volume, the root file system being
// read-only; the container runs as non-root.
func checkMounts(t *testing.T, where string, pod corev1.PodSpec, c corev1.Container, configMap string, v *runFlagsView, cfg Config) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: the root file system is not read-only", where)
	}
	if p := pod.SecurityContext; p == nil || p.RunAsNonRoot == nil || !*p.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not set", where)
	}
	volumes := map[string]corev1.Volume{}
	for _, vol := range pod.Volumes {
		volumes[vol.Name] = vol
	}
	mountOf := func(path string) *corev1.VolumeMount {
		var best *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
				best = &c.VolumeMounts[i]
			}
		}
		return best
	}
	if m := mountOf(v.config); m == nil || volumes[m.Name].ConfigMap == nil || volumes[m.Name].ConfigMap.Name != configMap {
		t.Errorf("%s: --config %s is not in the ConfigMap %s", where, v.config, configMap)
	}
	ledgerPath := firstSet(v.ledger, cfg.Ledger.Path)
	written := map[string]string{"the ledger": ledgerPath, "run.results_dir": cfg.Run.ResultsDir + "/x", "group.temp_dir": cfg.Group.TempDir + "/x"}
	for name, p := range written {
		if p == "/x" {
			continue // not set: beside the ledger, or the system's
		}
		m := mountOf(p)
		if m == nil || m.ReadOnly {
			t.Errorf("%s: %s (%s) is not on a writable volume", where, name, p)
		}
	}
	if m := mountOf(ledgerPath); m != nil && volumes[m.Name].PersistentVolumeClaim == nil {
		t.Errorf("%s: the ledger %s is not on a persistent volume", where, ledgerPath)
	}
}

// firstSet is the first of its arguments that is not empty.
func firstSet(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// unitFile is one systemd unit, as go-systemd's parser reads it.
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections, err := unit.DeserializeSections(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := unitFile{}
	for _, s := range sections {
		if u[s.Section] == nil {
			u[s.Section] = map[string][]string{}
		}
		for _, e := range s.Entries {
			u[s.Section][e.Name] = append(u[s.Section][e.Name], e.Value)
		}
	}
	return u
}

// one is the single value of key in section, or "".
func (u unitFile) one(section, key string) string {
	if v := u[section][key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// TestSystemdUnits: the service runs `convpipe run` with flags the binary
// has, sandboxed (DynamicUser, ProtectSystem=strict) with the SQLite
// ledger and the textfile in its StateDirectory, a start timeout that
// leaves the run its --max-duration and grace; the timer starts it; and
// systemd's own `systemd-analyze verify` finds nothing to say.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot, "deploy", "systemd")
	svc := readUnit(t, filepath.Join(dir, "convpipe.service"))
	timer := readUnit(t, filepath.Join(dir, "convpipe.timer"))

	s := svc["Service"]
	for key, want := range map[string]string{
		"Type": "oneshot", "DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "convpipe",
		"NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes", "KillSignal": "SIGTERM",
	} {
		if got := svc.one("Service", key); got != want {
			t.Errorf("convpipe.service: %s=%q, want %q", key, got, want)
		}
	}
	if len(s["ExecStart"]) != 1 {
		t.Fatalf("convpipe.service: %d ExecStart lines, want 1", len(s["ExecStart"]))
	}
	argv := strings.Fields(s["ExecStart"][0])
	if filepath.Base(argv[0]) != "convpipe" {
		t.Errorf("convpipe.service: ExecStart runs %s", argv[0])
	}
	v := parseRunArgs(t, "convpipe.service", argv[1:])
	if v == nil {
		return
	}
	state := "/var/lib/" + svc.one("Service", "StateDirectory") + "/"
	if !strings.HasPrefix(v.ledger, state) || !strings.HasPrefix(v.metricsFile, state) {
		t.Errorf("convpipe.service: --ledger %q and --metrics-file %q must be in the StateDirectory %s (the only writable place)", v.ledger, v.metricsFile, state)
	}
	if post := svc.one("Service", "ExecStopPost"); !strings.Contains(post, v.metricsFile) {
		t.Errorf("convpipe.service: ExecStopPost does not copy %s for node_exporter: %q", v.metricsFile, post)
	}
	timeout, err := time.ParseDuration(svc.one("Service", "TimeoutStartSec"))
	if err != nil {
		t.Errorf("convpipe.service: TimeoutStartSec: %v", err)
	}
	stop, err := time.ParseDuration(svc.one("Service", "TimeoutStopSec"))
	if err != nil || stop <= 30*time.Second {
		t.Errorf("convpipe.service: TimeoutStopSec %s must exceed run.grace (30s)", svc.one("Service", "TimeoutStopSec"))
	}
	checkDeadline(t, "convpipe.service: TimeoutStartSec", timeout, v.maxDuration, 30*time.Second)
	if v.deadline != "" {
		t.Errorf("convpipe.service: --deadline after a Persistent= catch-up start would mean the next day; use --max-duration")
	}
	if svc.one("Service", "EnvironmentFile") == "" {
		t.Error("convpipe.service: the credentials come from an EnvironmentFile")
	}
	if got := timer.one("Timer", "Unit"); got != "convpipe.service" {
		t.Errorf("convpipe.timer: Unit=%q", got)
	}
	if timer.one("Timer", "OnCalendar") == "" || timer.one("Install", "WantedBy") != "timers.target" {
		t.Errorf("convpipe.timer: OnCalendar %q, WantedBy %q", timer.one("Timer", "OnCalendar"), timer.one("Install", "WantedBy"))
	}
	systemdVerify(t, dir)
}

// systemdVerify runs `systemd-analyze verify` over copies of the units in
// dir whose ExecStart runs the test's convpipe binary (verify checks that
// the program exists), and fails on anything it prints: it exits 0 on
// unknown keys and bad values and only prints them. systemd-analyze
// comes with Debian's systemd package, installed here when missing.
func systemdVerify(t *testing.T, dir string) {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if out, err := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "systemd").CombinedOutput(); err != nil {
			t.Fatalf("systemd-analyze is missing and apt-get install systemd failed: %v\n%s", err, out)
		}
		if bin, err = exec.LookPath("systemd-analyze"); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	var units []string
	for _, name := range []string{"convpipe.service", "convpipe.timer"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/local/bin/convpipe"), []byte(binPath))
		writeFile(t, filepath.Join(tmp, name), string(data))
		units = append(units, filepath.Join(tmp, name))
	}
	cmd := exec.Command(bin, append([]string{"verify", "--man=no"}, units...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
