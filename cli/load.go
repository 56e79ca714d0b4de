package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// loadConfig loads the file named by -config and returns it with the bytes
// it was parsed from (nil for the embedded defaults). When the flag was
// not given and the default file does not exist, the embedded defaults
// are used.
func loadConfig(fset *flag.FlagSet, path string, env Env) (*config.Config, string, []byte, error) {
	explicit := false
	fset.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			explicit = true
		}
	})
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		c, err := config.Parse(env.DefaultConfig)
		if err != nil {
			return nil, "", nil, fmt.Errorf("embedded config: %w", err)
		}
		return c, "", nil, nil
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("loading config: %w", err)
	}
	c, err := config.Parse(b)
	if err != nil {
		return nil, "", nil, fmt.Errorf("loading config %s: %w", path, err)
	}
	return c, path, b, nil
}

// newLogs builds the JSON loggers from the log config: operational logs
// with the configured level and sampling, and the access log on a buffered
// writer. Both go to stderr.
func newLogs(lc config.Log, env Env) (*logs, error) {
	level, err := zapcore.ParseLevel(lc.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc := zapcore.NewJSONEncoder(ec)
	out := zapcore.Lock(zapcore.AddSync(env.Stderr))
	l := &logs{level: zap.NewAtomicLevelAt(level)}
	core := zapcore.NewCore(enc, out, l.level)
	if lc.SampleInitial > 0 {
		core = zapcore.NewSamplerWithOptions(core, time.Second, lc.SampleInitial, lc.SampleThereafter)
	}
	l.logger = zap.New(core)
	l.buffer = &zapcore.BufferedWriteSyncer{WS: out, FlushInterval: time.Second}
	l.access = zap.New(zapcore.NewCore(enc, l.buffer, zap.InfoLevel)).Named("access")
	return l, nil
}
