package translate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestEnvironmentValuesInASecret: every value of environment and env_file lives in the service's
// Secret env-<service>, never in the spec; compose's rules hold (environment overrides env_file, a
// later env_file overrides an earlier one, values interpolate from the shell and .env, an unset
// pass-through variable is left out); a name that is no valid Secret key keeps its exact name.
func TestEnvironmentValuesInASecret(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `services:
  api:
    image: example/api
    env_file: [base.env, local.env]
    environment:
      OVERRIDDEN: from-environment-1111
      FROM_SHELL: ${SHELL_VALUE}
      DOLLAR: "pa$$word-2222"
      PASS_THROUGH_SET:
      PASS_THROUGH_UNSET:
      "my var": spaced-6666
  quiet:
    image: example/quiet
`,
		"base.env":  "OVERRIDDEN=from-base-env-3333\nONLY_BASE=base-only-4444\nLATER=base-5555\n",
		"local.env": "LATER=local-7777\nREF=${ONLY_BASE}-ref\n",
	})
	res := load(t, dir, "SHELL_VALUE=shell-8888", "PASS_THROUGH_SET=passed-9999")
	spec, err := json.Marshal(res.Env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"OVERRIDDEN":       "from-environment-1111",
		"FROM_SHELL":       "shell-8888",
		"DOLLAR":           "pa$word-2222",
		"PASS_THROUGH_SET": "passed-9999",
		"ONLY_BASE":        "base-only-4444",
		"LATER":            "local-7777",
		"my var":           "spaced-6666",
		"REF":              "base-only-4444-ref",
	}
	for _, v := range []string{"1111", "2222", "3333", "4444", "5555", "6666", "7777", "8888", "9999"} {
		if strings.Contains(string(spec), v) {
			t.Errorf("a value (…%s) is in the spec:\n%s", v, spec)
		}
	}
	var api *v1alpha1.ServiceSpec
	for i := range res.Env.Spec.Services {
		s := &res.Env.Spec.Services[i]
		switch s.Name {
		case "api":
			api = s
		case "quiet":
			if s.EnvSecret != "" || len(s.Environment) != 0 {
				t.Errorf("quiet: envSecret %q, environment %v: want none", s.EnvSecret, s.Environment)
			}
		}
	}
	if api.EnvSecret != "env-api" {
		t.Fatalf("envSecret %q, want env-api", api.EnvSecret)
	}
	var secret map[string][]byte
	for _, s := range res.Secrets {
		if s.Name == api.EnvSecret {
			secret = s.Data
			if s.Namespace != res.Env.Namespace || s.Labels[v1alpha1.LabelEnv] != res.Env.Name {
				t.Errorf("Secret %s: namespace %q labels %v", s.Name, s.Namespace, s.Labels)
			}
		}
	}
	if secret == nil {
		t.Fatalf("no Secret %s among %d", api.EnvSecret, len(res.Secrets))
	}
	got := map[string]string{}
	for _, v := range api.Environment {
		if v.Value != "" || v.SecretKey == "" {
			t.Errorf("%s: value %q, secretKey %q", v.Name, v.Value, v.SecretKey)
		}
		if v.Name == "my var" && v.SecretKey == v.Name {
			t.Errorf("%q is no valid Secret key", v.Name)
		}
		got[v.Name] = string(secret[v.SecretKey])
	}
	if len(got) != len(want) || len(secret) != len(want) {
		t.Errorf("variables %v (Secret keys %d), want %v", got, len(secret), want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, w := range res.Warnings {
		if w.Key == "environment" && !strings.Contains(w.Message, "PASS_THROUGH_UNSET") {
			t.Errorf("unexpected warning %s", w)
		}
	}
}

func TestEnvSecretKeys(t *testing.T) {
	taken := map[string]bool{}
	isTaken := func(k string) bool { return taken[k] }
	for _, name := range []string{"A", "my var", "my_var", "a:b", "a;b", strings.Repeat("x", 300) + " "} {
		k := envSecretKey(name, isTaken)
		if taken[k] {
			t.Errorf("%q: key %q given twice", name, k)
		}
		taken[k] = true
		if len(k) > 253 || k == "" {
			t.Errorf("%q: bad key %q", name, k)
		}
		if again := envSecretKey(name, func(string) bool { return false }); again != k {
			t.Errorf("%q: key %q then %q: not deterministic", name, k, again)
		}
	}
}
