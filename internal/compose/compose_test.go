package compose

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/ergomake/ergomake/internal/testutil/tree"
)

func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard) // compose-go's own warnings; TestWarningsCaptured checks them
	os.Exit(m.Run())
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		line    int
		service string
		key     string
		msg     string
	}{
		{"invalid yaml", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\n"},
			5, "", "", "invalid YAML"},
		{"duplicate key", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    image: redis\n"},
			4, "web", "image", `invalid YAML: mapping key "image" already defined at line 3`},
		{"tab", map[string]string{"compose.yaml": "services:\n\tweb:\n    image: nginx\n"},
			2, "", "", "(a tab: indent with spaces)"},
		{"top-level list", map[string]string{"compose.yaml": "- a\n- b\n"},
			1, "", "", "must be a mapping"},
		{"services list", map[string]string{"compose.yaml": "services:\n  - web\n"},
			1, "", "services", "must be a mapping"},
		{"healthcheck test", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [\"FOO\", \"x\"]\n"},
			5, "web", "healthcheck.test", `must start either by "CMD"`},
		{"size", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    mem_limit: lots\n"},
			4, "web", "mem_limit", "invalid size: 'lots'"},
		{"missing include", map[string]string{"compose.yaml": "include:\n  - other.yaml\nservices:\n  web:\n    image: nginx\n"},
			2, "", "include", "other.yaml: no such file or directory"},
		{"misspelled key", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    imagee: foo\n"},
			4, "web", "imagee", `unknown key "imagee" (did you mean "image"?)`},
		{"unknown nested key", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    healthcheck:\n      tset: [CMD, true]\n"},
			5, "web", "healthcheck.tset", `unknown key "tset" (did you mean "test"?)`},
		{"unknown deploy key", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        limits:\n          memroy: 1g\n"},
			7, "web", "deploy.resources.limits.memroy", `unknown key "memroy" (did you mean "memory"?)`},
		{"unknown top-level key", map[string]string{"compose.yaml": "servics:\n  web:\n    image: nginx\n"},
			1, "", "", `unknown key "servics" (did you mean "services"?)`},
		{"wrong shape", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    ports: 80\n"},
			4, "web", "ports", `must be an array`},
		{"missing variable", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n  db:\n    image: ${DB_IMAGE:?set DB_IMAGE}\n"},
			5, "db", "image", "required variable DB_IMAGE is missing a value: set DB_IMAGE"},
		{"missing env file", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    env_file:\n      - web.env\n"},
			5, "web", "env_file", "web.env not found"},
		{"dependency cycle", map[string]string{"compose.yaml": "services:\n  a:\n    image: nginx\n    depends_on: [b]\n  b:\n    image: nginx\n    depends_on: [a]\n"},
			4, "a", "depends_on", "dependency cycle detected: a -> b -> a"},
		{"malformed port", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n  api:\n    image: nginx\n    ports:\n      - \"8080:80\"\n      - \"80:80:90:abc\"\n"},
			8, "api", "ports", "Invalid ip address"},
		{"malformed container port", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    ports:\n      - \"abc\"\n"},
			5, "web", "ports", "Invalid containerPort: abc"},
		{"wrong type", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    ports:\n      - target: abc\n"},
			5, "web", "ports.target", `"abc" must be an integer`},
		{"unknown dependency", map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    depends_on: [db]\n"},
			4, "web", "depends_on", `depends on undefined service "db"`},
		{"no image", map[string]string{"compose.yaml": "services:\n  web:\n    environment: [A=b]\n"},
			2, "web", "image", "neither an image nor a build context"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tree.Write(t, dir, c.files)
			_, err := Load(context.Background(), Options{WorkingDir: dir, Environ: []string{}})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *compose.Error, got %T %v", err, err)
			}
			file := filepath.Join(dir, "compose.yaml")
			if ce.File != file || ce.Line != c.line || ce.Service != c.service || ce.Key != c.key || !strings.Contains(ce.Msg, c.msg) {
				t.Errorf("got  file=%q line=%d service=%q key=%q msg=%q\nwant file=%q line=%d service=%q key=%q msg~%q",
					ce.File, ce.Line, ce.Service, ce.Key, ce.Msg, file, c.line, c.service, c.key, c.msg)
			}
			if !strings.HasPrefix(err.Error(), file) || strings.Contains(err.Error(), "\n") {
				t.Errorf("message must start with the file and be one line: %q", err.Error())
			}
			t.Log(err)
		})
	}
}

func TestDiscoveryAndEnv(t *testing.T) {
	dir := t.TempDir()
	tree.Write(t, dir, map[string]string{
		"docker-compose.yml":          "services:\n  web:\n    image: nginx:${TAG}\n    environment:\n      FROM_DOTENV: ${DOT}\n",
		"docker-compose.override.yml": "services:\n  web:\n    environment:\n      OVERRIDDEN: \"yes\"\n",
		".env":                        "TAG=1.25\nDOT=dotenv\n",
		"sub/dir/.keep":               "",
		"other.yaml":                  "services:\n  other:\n    image: busybox\n  extra:\n    image: busybox\n    profiles: [extra]\n",
		"alt.env":                     "TAG=alt\n",
	})
	ctx := context.Background()
	p, err := Load(ctx, Options{WorkingDir: filepath.Join(dir, "sub", "dir"), Environ: []string{"TAG=fromshell"}})
	if err != nil {
		t.Fatal(err)
	}
	web := p.Services["web"]
	if web.Image != "nginx:fromshell" {
		t.Errorf("shell env must win over .env: image %q", web.Image)
	}
	if v := web.Environment["FROM_DOTENV"]; v == nil || *v != "dotenv" {
		t.Errorf(".env not read: %v", web.Environment)
	}
	if v := web.Environment["OVERRIDDEN"]; v == nil || *v != "yes" {
		t.Errorf("override file not read: %v", web.Environment)
	}
	if p.Name != filepath.Base(dir) && p.Name != strings.ToLower(filepath.Base(dir)) {
		t.Errorf("project name %q", p.Name)
	}

	p, err = Load(ctx, Options{WorkingDir: dir, EnvFiles: []string{"alt.env"}, Environ: []string{
		"COMPOSE_FILE=docker-compose.yml;other.yaml", "COMPOSE_PATH_SEPARATOR=;", "COMPOSE_PROJECT_NAME=fromenv", "COMPOSE_PROFILES=extra"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "fromenv" || len(p.Services) != 3 || p.Services["web"].Image != "nginx:alt" {
		t.Errorf("COMPOSE_* not honoured: name %q services %v image %q", p.Name, p.ServiceNames(), p.Services["web"].Image)
	}

	p, err = Load(ctx, Options{WorkingDir: dir, Files: []string{"other.yaml"}, ProjectName: "flag", Environ: []string{"COMPOSE_PROJECT_NAME=fromenv"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "flag" || len(p.Services) != 1 {
		t.Errorf("flags not honoured: %q %v", p.Name, p.ServiceNames())
	}

	_, err = Load(ctx, Options{WorkingDir: dir, EnvFiles: []string{"nope.env"}, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "nope.env") {
		t.Errorf("missing --env-file: %v", err)
	}
	_, err = Load(ctx, Options{WorkingDir: t.TempDir(), Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "no compose file found") {
		t.Errorf("no file: %v", err)
	}
	_, err = Load(ctx, Options{WorkingDir: dir, Files: []string{"missing.yaml"}, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing -f: %v", err)
	}
}

func TestWarningsCaptured(t *testing.T) {
	dir := t.TempDir()
	tree.Write(t, dir, map[string]string{"compose.yaml": "version: \"3.8\"\nservices:\n  web:\n    image: nginx:${UNSET_TAG}\n"})
	var got []string
	_, err := Load(context.Background(), Options{WorkingDir: dir, Environ: []string{}, Warn: func(m string) { got = append(got, m) }})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(got, "\n")
	if !strings.Contains(all, `"UNSET_TAG" variable is not set`) || !strings.Contains(all, "version") {
		t.Errorf("warnings not captured: %q", got)
	}
}

func TestErrorsInIncludedFiles(t *testing.T) {
	dir := t.TempDir()
	tree.Write(t, dir, map[string]string{
		"compose.yaml":    "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: nginx\n",
		"db/compose.yaml": "services:\n  db:\n    image: postgres\n    ports:\n      - \"5432:abc\"\n",
	})
	_, err := Load(context.Background(), Options{WorkingDir: dir, Environ: []string{}})
	var ce *Error
	if !errors.As(err, &ce) || ce.File != filepath.Join(dir, "db", "compose.yaml") || ce.Line != 5 || ce.Service != "db" || ce.Key != "ports" {
		t.Fatalf("want the included file, line 5, service db, key ports; got %v", err)
	}
	l := NewLocator([]string{filepath.Join(dir, "compose.yaml")})
	if f, line := l.Find("db", "image"); f != filepath.Join(dir, "db", "compose.yaml") || line != 3 {
		t.Errorf("Locator.Find in an included file: %s:%d", f, line)
	}
	if !l.Has("db", "ports") || l.Has("db", "ports.0.target") || l.Has("web", "ports") || l.Has("cache", "image") {
		t.Error("Locator.Has: want only what a file writes itself")
	}
}

func TestProjectDirectoryIncludeExtends(t *testing.T) {
	dir := t.TempDir()
	tree.Write(t, dir, map[string]string{
		"app/compose.yaml":     "include:\n  - ../shared/db.yaml\nservices:\n  web:\n    extends:\n      file: base.yaml\n      service: base\n    environment:\n      FROM: ${FROM_APP_ENV}\n",
		"app/base.yaml":        "services:\n  base:\n    image: nginx:${TAG:-1}\n    ports: [\"80\"]\n",
		"app/.env":             "FROM_APP_ENV=app\nTAG=2\n",
		"shared/db.yaml":       "services:\n  db:\n    image: postgres\n",
		"elsewhere/.keep":      "",
		"app/.env.disabled.md": "",
	})
	p, err := Load(context.Background(), Options{WorkingDir: filepath.Join(dir, "elsewhere"), ProjectDirectory: "../app", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	web := p.Services["web"]
	if web.Image != "nginx:2" || len(web.Ports) != 1 || *web.Environment["FROM"] != "app" || p.Services["db"].Image != "postgres" || p.Name != "app" {
		t.Errorf("project directory, include or extends not honoured: %+v %v", web, p.ServiceNames())
	}
	p, err = Load(context.Background(), Options{WorkingDir: filepath.Join(dir, "app"), Environ: []string{"COMPOSE_DISABLE_ENV_FILE=true"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Services["web"].Image != "nginx:1" {
		t.Errorf("COMPOSE_DISABLE_ENV_FILE not honoured: %s", p.Services["web"].Image)
	}
}
