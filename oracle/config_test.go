package oracle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// checkValidate runs one Validate case: want empty means valid, otherwise
// every string in want must appear in the error and none in absent.
func checkValidate(t *testing.T, name string, err error, want, absent []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%s: refused a valid configuration: %v", name, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: accepted, want an error naming %q", name, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", name, err, w)
		}
	}
	for _, a := range absent {
		if strings.Contains(err.Error(), a) {
			t.Errorf("%s: error %q names %q, which was not set", name, err, a)
		}
	}
}

// TestScheduleConfigValidate: negative durations and counts and phase
// targets over ten minutes are refused, naming the knob; zero means the
// default, negative storm settings disable storms, and Validate changes
// nothing in the configuration it judges.
func TestScheduleConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*ScheduleConfig)
		want   []string
		absent []string
	}{
		{"zero", func(*ScheduleConfig) {}, nil, nil},
		{"storms disabled", func(c *ScheduleConfig) { c.StormInterval, c.RandomStormSize = -1, -1 }, nil, nil},
		{"targets at the cap", func(c *ScheduleConfig) { c.TimedTargetMillis, c.MemoryTargetMillis = 600000, 600000 }, nil, nil},
		{"negative tick", func(c *ScheduleConfig) { c.Tick = -time.Second }, []string{"Schedule.Tick must not be negative, got -1s"}, nil},
		{"negative interval", func(c *ScheduleConfig) { c.Interval = -time.Minute }, []string{"Schedule.Interval must not be negative, got -1m0s"}, []string{"StormInterval"}},
		{"negative proof window", func(c *ScheduleConfig) { c.ProofWindow = -1 }, []string{"Schedule.ProofWindow must not be negative"}, nil},
		{"negative max per tick", func(c *ScheduleConfig) { c.MaxPerTick = -5 }, []string{"Schedule.MaxPerTick must not be negative, got -5"}, nil},
		{"timed target over the cap", func(c *ScheduleConfig) { c.TimedTargetMillis = 600001 }, []string{"Schedule.TimedTargetMillis 600001 exceeds"}, []string{"MemoryTargetMillis"}},
		{"memory target over the cap", func(c *ScheduleConfig) { c.MemoryTargetMillis = 1 << 40 }, []string{"Schedule.MemoryTargetMillis"}, []string{"TimedTargetMillis"}},
		{"every problem at once", func(c *ScheduleConfig) { c.Tick, c.MaxPerTick, c.TimedTargetMillis = -1, -1, 1e9 }, []string{"Schedule.Tick", "Schedule.MaxPerTick", "Schedule.TimedTargetMillis"}, []string{"Interval"}},
	} {
		var c ScheduleConfig
		tc.set(&c)
		before := c
		checkValidate(t, tc.name, c.Validate(), tc.want, tc.absent)
		if c != before {
			t.Errorf("%s: Validate changed the configuration: %+v, was %+v", tc.name, c, before)
		}
	}
	// The problems are listed in field order, the same every time.
	c := ScheduleConfig{Tick: -1, Interval: -1, ProofWindow: -1, MaxPerTick: -1}
	first := c.Validate().Error()
	for range 20 {
		if got := c.Validate().Error(); got != first {
			t.Fatalf("Validate lists the problems in varying order:\n%s\n%s", first, got)
		}
	}
	if i, j := strings.Index(first, "Tick"), strings.Index(first, "MaxPerTick"); i < 0 || j < 0 || i > j {
		t.Fatalf("problems not in field order: %q", first)
	}
}

// TestPipelineConfigValidate: every negative knob is refused, naming it
// (and only it: a negative rate does not also blame the burst derived from
// it), and so is a batch larger than the queue it is taken from, judged
// with the defaults in place of zero fields.
func TestPipelineConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*PipelineConfig)
		want   []string
		absent []string
	}{
		{"zero", func(*PipelineConfig) {}, nil, nil},
		{"batch as large as the queue", func(c *PipelineConfig) { c.MaxBatch, c.QueueDepth = 64, 64 }, nil, nil},
		{"batch below the default queue", func(c *PipelineConfig) { c.MaxBatch = 4096 }, nil, nil},
		{"negative workers", func(c *PipelineConfig) { c.Workers = -2 }, []string{"Pipeline.Workers must not be negative, got -2"}, nil},
		{"negative queue", func(c *PipelineConfig) { c.QueueDepth = -1 }, []string{"Pipeline.QueueDepth must not be negative"}, []string{"MaxBatch"}},
		{"negative batch", func(c *PipelineConfig) { c.MaxBatch = -1 }, []string{"Pipeline.MaxBatch must not be negative"}, nil},
		{"negative rate", func(c *PipelineConfig) { c.RatePerNode = -10 }, []string{"Pipeline.RatePerNode must not be negative, got -10"}, []string{"Burst"}},
		{"negative burst", func(c *PipelineConfig) { c.Burst = -1 }, []string{"Pipeline.Burst must not be negative"}, []string{"RatePerNode"}},
		{"negative max devices", func(c *PipelineConfig) { c.MaxDevices = -64 }, []string{"Pipeline.MaxDevices must not be negative"}, nil},
		{"too many devices", func(c *PipelineConfig) { c.MaxDevices = 65 }, []string{"Pipeline.MaxDevices 65 exceeds 64"}, nil},
		{"negative batch wait", func(c *PipelineConfig) { c.BatchWait = -time.Millisecond }, []string{"Pipeline.BatchWait must not be negative, got -1ms"}, nil},
		{"negative clock skew", func(c *PipelineConfig) { c.MaxClockSkew = -time.Minute }, []string{"Pipeline.MaxClockSkew must not be negative"}, nil},
		{"batch larger than the queue", func(c *PipelineConfig) { c.MaxBatch, c.QueueDepth = 200, 100 }, []string{"Pipeline.MaxBatch 200 exceeds QueueDepth 100"}, nil},
		{"batch larger than the default queue", func(c *PipelineConfig) { c.MaxBatch = 10000 }, []string{"Pipeline.MaxBatch 10000 exceeds QueueDepth 8192"}, nil},
	} {
		var c PipelineConfig
		tc.set(&c)
		before := c
		checkValidate(t, tc.name, c.Validate(), tc.want, tc.absent)
		if c != before {
			t.Errorf("%s: Validate changed the configuration: %+v, was %+v", tc.name, c, before)
		}
	}
}

// TestConfigValidateSubConfigs: a member's Validate reports its own
// problems and its sub-configurations' together, as ErrInvalidConfig,
// whether or not the defaults were applied first; Start refuses such a
// configuration before it opens anything.
func TestConfigValidateSubConfigs(t *testing.T) {
	_, _, vk := testKeys(t)
	base := func() Config {
		return Config{ID: "m", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", SignerKey: ethcrypto.KeyFromSeed([]byte("config test member")), VerifyingKey: vk}
	}
	c := base()
	c.Schedule.MaxPerTick = -1
	c.Pipeline.MaxBatch, c.Pipeline.QueueDepth = 10, 5
	c.Admission = &RegistrationBudget{PerSecond: -1, Burst: 10}
	c.Timing.RaftTimeout, c.Timing.TransportPool = -time.Second, -1
	for _, defaults := range []bool{false, true} {
		d := c
		if defaults {
			if err := d.ensureDefaults(); err != nil {
				t.Fatal(err)
			}
		}
		err := d.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("defaults applied %v: Validate: %v, want ErrInvalidConfig", defaults, err)
		}
		checkValidate(t, "member", err, []string{"Schedule.MaxPerTick", "Pipeline.MaxBatch 10 exceeds QueueDepth 5", "Admission: a registration budget must not be negative",
			"Timing.RaftTimeout must not be negative, got -1s", "Timing.TransportPool must not be negative"}, []string{"ID", "DataDir", "Timing.AuditInterval"})
	}
	if _, err := Start(t.Context(), c); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start: %v, want ErrInvalidConfig", err)
	}
	ok := base()
	if err := ok.ensureDefaults(); err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a configuration with only the required fields: %v", err)
	}
}
