package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Config is the profile file: named deployments and their admin tokens.
// It holds a secret, so it is written 0600 in a 0700 folder.
type Config struct {
	Profiles map[string]Profile `json:"profiles"`
}

// Profile is one deployment and the admin token to call it with.
type Profile struct {
	URL   string `json:"url,omitempty"`
	Token string `json:"token,omitempty"`
}

// defaultConfigPath is ~/.config/keyseal/config.json (the OS's user
// config folder: $XDG_CONFIG_HOME, or ~/Library/Application Support).
func defaultConfigPath(getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "keyseal", "config.json"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "keyseal", "config.json"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config folder (set KEYSEAL_CONFIG or --config): %w", err)
	}
	return filepath.Join(d, "keyseal", "config.json"), nil
}

// loadConfig reads path; a missing file is an empty config.
func loadConfig(path string) (Config, error) {
	cfg := Config{Profiles: map[string]Profile{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading the config file: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config file %s is not valid JSON: %v", path, err)
	}
	if cfg.Profiles == nil {
		cfg.Profiles = map[string]Profile{}
	}
	return cfg, nil
}

// saveConfig writes cfg to path, mode 0600 (its folder 0700), through a
// temporary file so a failed write leaves the old one.
func saveConfig(path string, cfg Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the config folder: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the config file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	return nil
}
