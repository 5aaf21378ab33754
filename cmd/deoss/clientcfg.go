package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/deoss/deoss/sdk"
)

// clientConfig is client.yaml: where the client commands send requests and
// which key signs them. Any field may be missing; the others sources of
// resolve fill it in.
type clientConfig struct {
	Gateway   string `yaml:"gateway,omitempty"`
	Chain     string `yaml:"chain,omitempty"`
	Key       string `yaml:"key,omitempty"`
	Territory string `yaml:"territory,omitempty"`
	// CAFile is a CA certificate (PEM) to trust beside the system's.
	CAFile string `yaml:"ca_file,omitempty"`
	// S3 is an S3 credential for tools (deoss dev writes the dev one).
	S3 *s3Settings `yaml:"s3,omitempty"`
}

// s3Settings is where and how S3 tools reach a gateway.
type s3Settings struct {
	Endpoint  string `json:"endpoint" yaml:"endpoint"`
	Region    string `json:"region" yaml:"region"`
	AccessKey string `json:"access_key" yaml:"access_key"`
	SecretKey string `json:"secret_key" yaml:"secret_key"`
}

// setting is one resolved value and where it came from ("flag --chain",
// "env DEOSS_CHAIN", "/path/client.yaml", "default").
type setting struct {
	Value  string `json:"value"`
	Source string `json:"source"`
}

// resolved is the client configuration every client command uses.
type resolved struct {
	Gateway   setting `json:"gateway"`
	Chain     setting `json:"chain"`
	Key       setting `json:"key"`
	Territory setting `json:"territory"`
	CAFile    setting `json:"ca_file"`
	// Files are the config files read, the first one first.
	Files []string `json:"files,omitempty"`
}

// The defaults: the ports `deoss chain start` and `deoss gateway init` use.
const (
	defaultChain     = "http://127.0.0.1:26657"
	defaultGateway   = "http://127.0.0.1:8080"
	defaultTerritory = "home"
)

// defaultDevDir is where `deoss dev` keeps its network unless told otherwise.
func defaultDevDir() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".deoss", "dev")
}

func defaultKey() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".deoss", "key.json")
}

// resolveConfig resolves each value in this order: the command's flag, the
// environment, the config file named by --config or DEOSS_CONFIG (which
// must exist), the dev network's client.yaml (when there is one), the
// default.
func resolveConfig(cmd *cobra.Command, configFlag string) (*resolved, error) {
	type layer struct {
		path string
		c    *clientConfig
	}
	var files []layer
	explicit := configFlag
	if explicit == "" {
		explicit = os.Getenv("DEOSS_CONFIG")
	}
	if explicit != "" {
		c, err := loadClientConfig(explicit)
		if errors.Is(err, os.ErrNotExist) {
			return nil, usageError{fmt.Errorf("no client config at %s (from --config or DEOSS_CONFIG): start a network with `deoss dev`, or write one", explicit)}
		}
		if err != nil {
			return nil, err
		}
		files = append(files, layer{explicit, c})
	}
	dev := filepath.Join(defaultDevDir(), "client.yaml")
	if dev != explicit {
		c, err := loadClientConfig(dev)
		switch {
		case err == nil:
			files = append(files, layer{dev, c})
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	r := &resolved{}
	for _, l := range files {
		r.Files = append(r.Files, l.path)
	}
	pick := func(flag, env string, field func(*clientConfig) string, def string) setting {
		if f := cmd.Flag(flag); f != nil && f.Changed {
			return setting{f.Value.String(), "flag --" + flag}
		}
		if v := os.Getenv(env); v != "" {
			return setting{v, "env " + env}
		}
		for _, l := range files {
			if v := field(l.c); v != "" {
				return setting{v, l.path}
			}
		}
		return setting{def, "default"}
	}
	r.Gateway = pick("gateway", "DEOSS_GATEWAY", func(c *clientConfig) string { return c.Gateway }, defaultGateway)
	r.Chain = pick("chain", "DEOSS_CHAIN", func(c *clientConfig) string { return c.Chain }, defaultChain)
	r.Key = pick("key", "DEOSS_KEY", func(c *clientConfig) string { return c.Key }, defaultKey())
	r.Territory = pick("territory", "DEOSS_TERRITORY", func(c *clientConfig) string { return c.Territory }, defaultTerritory)
	r.CAFile = pick("ca-file", "DEOSS_CA_FILE", func(c *clientConfig) string { return c.CAFile }, "")
	return r, nil
}

// loadClientConfig reads a client.yaml; a relative key path is relative to
// the file's folder.
func loadClientConfig(path string) (*clientConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c clientConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, usageError{fmt.Errorf("%s: %v", path, err)}
	}
	if c.Key != "" && !filepath.IsAbs(c.Key) {
		c.Key = filepath.Join(filepath.Dir(path), c.Key)
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
		c.CAFile = filepath.Join(filepath.Dir(path), c.CAFile)
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

// config is the resolved client configuration of the running command.
func (g *globals) config() (*resolved, error) {
	if g.cfg == nil {
		cfg, err := resolveConfig(g.cmd, g.configFile)
		if err != nil {
			return nil, err
		}
		g.cfg = cfg
	}
	return g.cfg, nil
}

// sdkClient builds the gateway client of the resolved config.
func (g *globals) sdkClient() (*sdk.Client, *resolved, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, nil, err
	}
	k, err := g.loadKey()
	if err != nil {
		return nil, nil, err
	}
	c := sdk.NewWithKey(cfg.Gateway.Value, k)
	if cfg.CAFile.Value != "" {
		if err := c.UseCA(cfg.CAFile.Value); err != nil {
			return nil, nil, err
		}
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
