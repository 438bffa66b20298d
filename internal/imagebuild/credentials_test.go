package imagebuild

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRegistryHost(t *testing.T) {
	for ref, want := range map[string][2]string{
		"registry.example.com:5000/team/app": {"registry.example.com:5000", "registry.example.com:5000"},
		"localhost:5001/x":                   {"localhost:5001", "localhost:5001"},
		"localhost/x":                        {"localhost", "localhost"},
		"myorg":                              {"docker.io", "https://index.docker.io/v1/"},
		"myorg/app":                          {"docker.io", "https://index.docker.io/v1/"},
		"docker.io/myorg":                    {"docker.io", "https://index.docker.io/v1/"},
		"10.200.0.1:32000/proj":              {"10.200.0.1:32000", "10.200.0.1:32000"},
	} {
		if h, k := RegistryHost(ref); h != want[0] || k != want[1] {
			t.Errorf("RegistryHost(%q) = %q, %q; want %q, %q", ref, h, k, want[0], want[1])
		}
	}
}

// TestUserCredentials: the auths entries (auth, or username and password), Docker Hub's key, a
// credential helper (a real program on PATH, as docker runs it), and none.
func TestUserCredentials(t *testing.T) {
	bin := t.TempDir()
	// docker-credential-e2e: the credentials protocol (`get`, the server on stdin).
	helper := `#!/bin/sh
read server
case "$server" in
helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"robot","Secret":"t0ken"}' ;;
tok.example.com) echo '{"ServerURL":"tok.example.com","Username":"<token>","Secret":"refresh"}' ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-e2e"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	auth := base64.StdEncoding.EncodeToString([]byte("dev:s3cret"))
	dir := writeConfig(t, `{"auths": {
		"registry.example.com:5000": {"auth": "`+auth+`"},
		"https://index.docker.io/v1/": {"username": "hubuser", "password": "hubpass"},
		"other.example.com": {}
	}, "credHelpers": {"helped.example.com": "e2e", "tok.example.com": "e2e", "missing.example.com": "e2e"}}`)
	cf, err := LoadDockerConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		want *Credentials
	}{
		{"registry.example.com:5000/team", &Credentials{Username: "dev", Password: "s3cret", Auth: auth}},
		{"myorg/app", &Credentials{Username: "hubuser", Password: "hubpass", Auth: base64.StdEncoding.EncodeToString([]byte("hubuser:hubpass"))}},
		{"helped.example.com/x", &Credentials{Username: "robot", Password: "t0ken", Auth: base64.StdEncoding.EncodeToString([]byte("robot:t0ken"))}},
		{"tok.example.com", &Credentials{IdentityToken: "refresh"}},
		{"missing.example.com/x", nil},
		{"other.example.com/x", nil},
		{"unknown.example.com", nil},
	}
	for _, tt := range tests {
		got, err := UserCredentials(cf, tt.ref)
		if err != nil {
			t.Errorf("%s: %v", tt.ref, err)
			continue
		}
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: %+v; want %+v", tt.ref, got, tt.want)
		}
	}

	// a helper that is not installed is an error naming the registry
	cf, err = LoadDockerConfig(writeConfig(t, `{"credsStore": "nowhere-to-be-found"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UserCredentials(cf, "registry.example.com/x"); err == nil || !strings.Contains(err.Error(), "registry.example.com") {
		t.Errorf("missing helper: %v", err)
	}
}

func TestLoadDockerConfig(t *testing.T) {
	if cf, err := LoadDockerConfig(t.TempDir()); err != nil || len(cf.AuthConfigs) != 0 {
		t.Errorf("no config.json: %+v, %v", cf, err)
	}
	dir := writeConfig(t, "{")
	if _, err := LoadDockerConfig(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Errorf("broken config.json: %v", err)
	}
	// empty: $DOCKER_CONFIG
	t.Setenv("DOCKER_CONFIG", writeConfig(t, `{"auths": {"env.example.com": {"username": "u", "password": "p"}}}`))
	cf, err := LoadDockerConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := UserCredentials(cf, "env.example.com/x"); err != nil || c == nil || c.Username != "u" {
		t.Errorf("$DOCKER_CONFIG: %+v, %v", c, err)
	}
}
