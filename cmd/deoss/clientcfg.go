package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/deoss/deoss/sdk"
)

// clientConfig is client.yaml: where the client commands send requests and
// which key signs them.
type clientConfig struct {
	Gateway   string `yaml:"gateway"`
	Chain     string `yaml:"chain"`
	Key       string `yaml:"key"`
	Territory string `yaml:"territory"`
}

// defaultDevDir is where `deoss dev` keeps its network unless told otherwise.
func defaultDevDir() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".deoss", "dev")
}

// configPath is --config, else $DEOSS_CONFIG, else the dev network's
// client.yaml.
func (g *globals) configPath() string {
	switch {
	case g.configFile != "":
		return g.configFile
	case os.Getenv("DEOSS_CONFIG") != "":
		return os.Getenv("DEOSS_CONFIG")
	}
	return filepath.Join(defaultDevDir(), "client.yaml")
}

func loadClientConfig(path string) (*clientConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, usageError{fmt.Errorf("no client config at %s: start a network with `deoss dev`, or pass --config", path)}
	}
	if err != nil {
		return nil, err
	}
	var c clientConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, usageError{fmt.Errorf("%s: %v", path, err)}
	}
	if c.Gateway == "" || c.Key == "" {
		return nil, usageError{fmt.Errorf("%s: gateway and key are required", path)}
	}
	if !filepath.IsAbs(c.Key) {
		c.Key = filepath.Join(filepath.Dir(path), c.Key)
	}
	if c.Territory == "" {
		c.Territory = "home"
	}
	return &c, nil
}

func saveClientConfig(path string, c *clientConfig) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// sdkClient builds the gateway client of the selected config.
func (g *globals) sdkClient() (*sdk.Client, *clientConfig, error) {
	cfg, err := loadClientConfig(g.configPath())
	if err != nil {
		return nil, nil, err
	}
	c, err := sdk.New(cfg.Gateway, cfg.Key)
	if err != nil {
		return nil, nil, err
	}
	return c, cfg, nil
}

// fidClient parses a FID argument and builds the gateway client.
func (g *globals) fidClient(arg string) (sdk.FID, *sdk.Client, error) {
	fid, err := sdk.ParseFID(arg)
	if err != nil {
		return fid, nil, usageError{err}
	}
	c, _, err := g.sdkClient()
	return fid, c, err
}
