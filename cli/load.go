package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/envelope-proxy/envelope-proxy/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// loadConfig loads the file named by -config. When the flag was not given
// and the default file does not exist, the embedded defaults are used.
func loadConfig(fset *flag.FlagSet, path string, env Env) (*config.Config, string, error) {
	explicit := false
	fset.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			explicit = true
		}
	})
	if !explicit {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			c, err := config.Parse(env.DefaultConfig)
			if err != nil {
				return nil, "", fmt.Errorf("embedded config: %w", err)
			}
			return c, "", nil
		}
	}
	c, err := config.Load(path)
	return c, path, err
}

// newLogger builds the JSON logger from the log config.
func newLogger(lc config.Log, env Env) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(lc.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Sampling = nil
	if lc.SampleInitial > 0 {
		zc.Sampling = &zap.SamplingConfig{Initial: lc.SampleInitial, Thereafter: lc.SampleThereafter}
	}
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	zc.OutputPaths = nil
	zc.ErrorOutputPaths = nil
	enc := zapcore.NewJSONEncoder(zc.EncoderConfig)
	core := zapcore.NewCore(enc, zapcore.AddSync(env.Stderr), zc.Level)
	if zc.Sampling != nil {
		core = zapcore.NewSamplerWithOptions(core, 1e9, zc.Sampling.Initial, zc.Sampling.Thereafter)
	}
	return zap.New(core), nil
}
