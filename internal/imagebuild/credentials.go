package imagebuild

import (
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
)

// The user's docker credentials: read here only, for the builder (pushes to --registry, private
// base images, cache_from) and for the imagePullSecret of the user's registry.

// LoadDockerConfig reads the docker config.json of dir (empty: $DOCKER_CONFIG, else ~/.docker).
// A missing file is an empty config; an unreadable one is an error naming it.
func LoadDockerConfig(dir string) (*configfile.ConfigFile, error) {
	if dir == "" {
		// docker's own default, quietly: a broken default file is reported by docker itself.
		return config.LoadDefaultConfigFile(io.Discard), nil
	}
	cf, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, config.ConfigFileName), err)
	}
	return cf, nil
}

// Credentials are a user's credentials for one registry, as a dockerconfigjson "auths" entry
// (kubelet's reading of it).
type Credentials struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// RegistryHost is the host of an image reference or registry prefix (host[:port][/path]) and
// the key docker's config files its credentials under: Docker Hub's is its historical URL.
func RegistryHost(ref string) (host, configKey string) {
	first, _, _ := strings.Cut(ref, "/")
	if !strings.ContainsAny(first, ".:") && first != "localhost" || first == "docker.io" || first == "index.docker.io" {
		return "docker.io", "https://index.docker.io/v1/"
	}
	return first, first
}

// UserCredentials are the credentials the user's docker config (cf, from LoadDockerConfig)
// holds for the registry of ref: its credential helper's (credHelpers, else credsStore) when it
// names one, else its "auths" entry. Nil: none (a public registry).
func UserCredentials(cf *configfile.ConfigFile, ref string) (*Credentials, error) {
	_, key := RegistryHost(ref)
	a, err := cf.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("docker credentials for %s: %w", key, err)
	}
	c := &Credentials{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken}
	if c.Auth != "" && c.Username == "" {
		if dec, err := base64.StdEncoding.DecodeString(c.Auth); err == nil {
			c.Username, c.Password, _ = strings.Cut(string(dec), ":")
		}
	}
	if c.Username != "" {
		c.Auth = base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	}
	if c.Auth == "" && c.IdentityToken == "" {
		return nil, nil
	}
	return c, nil
}
