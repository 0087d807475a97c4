// Package jsonlog is keyseal's structured JSON logger, in a package of its
// own so the event publisher gets it without linking the KMS wiring.
package jsonlog

import (
	"log/slog"
	"os"
)

// New returns a JSON logger on stdout at level ("debug", "info", ...;
// validated by config.Load, an unknown one logs at info).
func New(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l}))
}
