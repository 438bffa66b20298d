package compose

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ergomake/ergomake/internal/testutil/tree"
)

// TestLocate pins how each kind of compose-go message is turned into an *Error, one case per
// entry of the locators table (and the fallbacks), from the message alone and the files: no
// loading, so that each branch is reached whatever compose-go's version says.
func TestLocate(t *testing.T) {
	const web = "services:\n  web:\n    image: nginx\n    ports:\n      - \"80\"\n    env_file: [web.env]\n    depends_on: [db]\n    healthcheck:\n      test: [FOO, x]\n  db:\n    image: postgres\n    volumes:\n      - data:/var/lib/postgresql/data\nvolumes:\n  data: {}\nname: shop\n"
	cases := []struct {
		name  string
		files map[string]string // compose.yaml is the first file
		env   types.Mapping
		msg   string
		want  Error // File is relative to the project folder
	}{
		{name: "yaml syntax", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: [\n"},
			msg: "yaml: line 3: did not find expected node content",
			// the file does not parse: no key to name
			want: Error{File: "compose.yaml", Line: 3, Msg: "invalid YAML: did not find expected node content"}},
		{name: "schema: wrong type", files: map[string]string{"compose.yaml": web},
			msg:  "validating compose.yaml: services.web.ports must be a array",
			want: Error{File: "compose.yaml", Line: 4, Service: "web", Key: "ports", Msg: "must be an array"}},
		{name: "schema: wrapped by compose file is invalid", files: map[string]string{"compose.yaml": web},
			msg:  `compose file "compose.yaml" is invalid: validating compose.yaml: services.web.ports must be a array`,
			want: Error{File: "compose.yaml", Line: 4, Service: "web", Key: "ports", Msg: "must be an array"}},
		{name: "schema: top-level path", files: map[string]string{"compose.yaml": web},
			msg:  "validating compose.yaml: name must be a string",
			want: Error{File: "compose.yaml", Line: 16, Key: "name", Msg: "must be a string"}},
		{name: "schema: unknown key, first in the file", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    zzz: 1\n    imagee: x\n"},
			msg:  "validating compose.yaml: services.web additional properties 'zzz', 'imagee' not allowed",
			want: Error{File: "compose.yaml", Line: 4, Service: "web", Key: "zzz", Msg: `unknown key "zzz"`}},
		{name: "schema: unknown top-level key", files: map[string]string{"compose.yaml": "servics:\n  web:\n    image: nginx\n"},
			msg:  "validating compose.yaml:  additional properties 'servics' not allowed",
			want: Error{File: "compose.yaml", Line: 1, Msg: `unknown key "servics" (did you mean "services"?)`}},
		{name: "schema: version 1 format", files: map[string]string{"compose.yaml": "web:\n  image: nginx\n"},
			msg:  "validating compose.yaml:  additional properties 'web' not allowed",
			want: Error{File: "compose.yaml", Line: 1, Msg: `unknown top-level key "web": this file uses the obsolete version 1 format (services at the top level); move the services under "services:"`}},
		{name: "failed to parse", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n"},
			msg:  "failed to parse compose.yaml: yaml: line 2: mapping values are not allowed in this context",
			want: Error{File: "compose.yaml", Line: 2, Service: "web", Msg: "invalid YAML: mapping values are not allowed in this context"}},
		{name: "decode", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    mem_limit: lots\n"},
			msg:  "'services[web].mem_limit' invalid size: 'lots'",
			want: Error{File: "compose.yaml", Line: 4, Service: "web", Key: "mem_limit", Msg: "invalid size: 'lots'"}},
		{name: "healthcheck test", files: map[string]string{"compose.yaml": "services:\n  ok:\n    image: nginx\n    healthcheck:\n      test: [CMD, \"true\"]\n" + web[len("services:\n"):]},
			msg:  `healthcheck.test must start either by "CMD", "CMD-SHELL" or "NONE"`,
			want: Error{File: "compose.yaml", Line: 13, Service: "web", Key: "healthcheck.test", Msg: `must start either by "CMD", "CMD-SHELL" or "NONE"`}},
		{name: "healthcheck test not found", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n"},
			msg:  `healthcheck.test must start either by "CMD", "CMD-SHELL" or "NONE"`,
			want: Error{File: "compose.yaml", Key: "healthcheck.test", Msg: `must start either by "CMD", "CMD-SHELL" or "NONE"`}},
		{name: "must be a mapping", files: map[string]string{"compose.yaml": "services:\n  - web\n"},
			msg:  "services must be a mapping",
			want: Error{File: "compose.yaml", Line: 1, Key: "services", Msg: "must be a mapping"}},
		// compose-go reports whichever bad entry it meets first in map order: the first in the file
		{name: "must be a mapping: first entry of secrets", files: map[string]string{"compose.yaml": " secrets:\n  C:\n  7Z: \n"},
			msg:  "secrets.7Z: must be a mapping",
			want: Error{File: "compose.yaml", Line: 2, Key: "secrets.C", Msg: "must be a mapping"}},
		{name: "schema: must be a mapping: first entry of secrets", files: map[string]string{"compose.yaml": " secrets:\n  C:\n  7Z: \n"},
			msg:  "validating compose.yaml: secrets.7Z must be a mapping",
			want: Error{File: "compose.yaml", Line: 2, Key: "secrets.C", Msg: "must be a mapping"}},
		{name: "must be a mapping or null: first entry of networks", files: map[string]string{"compose.yaml": "networks:\n  a:\n  b: x\n  c: [1]\n"},
			msg:  "networks.c: must be a mapping or null",
			want: Error{File: "compose.yaml", Line: 3, Key: "networks.b", Msg: "must be a mapping or null"}},
		{name: "project name from the environment", files: map[string]string{"compose.yaml": web}, env: types.Mapping{EnvComposeProjectName: "Bad Name"},
			msg:  `invalid project name "Bad Name": must consist only of lowercase alphanumeric characters`,
			want: Error{Key: EnvComposeProjectName, Msg: `invalid project name "Bad Name": must consist only of lowercase alphanumeric characters`}},
		{name: "project name from the file", files: map[string]string{"compose.yaml": web},
			msg:  `invalid project name "Shop": must consist only of lowercase alphanumeric characters`,
			want: Error{File: "compose.yaml", Line: 16, Key: "name", Msg: `invalid project name "Shop": must consist only of lowercase alphanumeric characters`}},
		{name: "open: named in the files", files: map[string]string{"compose.yaml": "include:\n  - other.yaml\nservices:\n  web:\n    image: nginx\n"},
			msg:  "open /p/other.yaml: no such file or directory",
			want: Error{File: "compose.yaml", Line: 2, Key: "include", Msg: "/p/other.yaml: no such file or directory"}},
		{name: "open: not in the files", files: map[string]string{"compose.yaml": web},
			msg:  "open /p/nowhere.yaml: permission denied",
			want: Error{File: "compose.yaml", Msg: "/p/nowhere.yaml: permission denied"}},
		{name: "include cycle", files: map[string]string{"compose.yaml": "include:\n  - b.yaml\nservices:\n  web:\n    image: nginx\n"},
			msg:  "include cycle detected:\n<dir>/compose.yaml\n include <dir>/b.yaml\n include <dir>/compose.yaml",
			want: Error{File: "compose.yaml", Line: 1, Key: "include", Msg: "cycle: <dir>/compose.yaml includes <dir>/b.yaml includes <dir>/compose.yaml"}},
		{name: "object", files: map[string]string{"compose.yaml": web},
			msg:  `volume "data" has both external and driver set: invalid compose project`,
			want: Error{File: "compose.yaml", Line: 15, Key: "volumes.data", Msg: "has both external and driver set"}},
		{name: "interpolation", files: map[string]string{"compose.yaml": web},
			msg:  "error while interpolating services.db.image: required variable DB_IMAGE is missing a value",
			want: Error{File: "compose.yaml", Line: 11, Service: "db", Key: "image", Msg: "required variable DB_IMAGE is missing a value"}},
		{name: "interpolation: cast", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    ports:\n      - target: abc\n"},
			msg:  `error while interpolating services.web.ports.[].target: failed to cast to expected type: strconv.Atoi: parsing "abc": invalid syntax`,
			want: Error{File: "compose.yaml", Line: 5, Service: "web", Key: "ports.target", Msg: `"abc" must be an integer`}},
		{name: "interpolation: cast to another type", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    cpus: x\n"},
			msg:  `error while interpolating services.web.cpus: failed to cast to expected type: strconv.ParseComplex: parsing "x": invalid syntax`,
			want: Error{File: "compose.yaml", Line: 4, Service: "web", Key: "cpus", Msg: `"x" must be of another type`}},
		{name: "env file", files: map[string]string{"compose.yaml": web},
			msg:  "env file /p/web.env not found: stat /p/web.env: no such file or directory",
			want: Error{File: "compose.yaml", Line: 6, Service: "web", Key: "env_file", Msg: "env file /p/web.env not found"}},
		{name: "empty env file", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n    env_file:\n      - db.env\n      - \"\"\n"},
			msg:  "env file  not found: stat : no such file or directory",
			want: Error{File: "compose.yaml", Line: 8, Service: "db", Key: "env_file", Msg: `"" is not a file name`}},
		{name: "empty label file", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    label_file: \"\"\n"},
			msg:  "label file  not found: stat : no such file or directory",
			want: Error{File: "compose.yaml", Line: 4, Service: "web", Key: "label_file", Msg: `"" is not a file name`}},
		{name: "empty volume", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    volumes: [\"/a:/a\"]\n  cache:\n    image: redis\n    volumes:\n      - /b:/b\n      - \"\"\n"},
			msg:  "invalid empty volume spec",
			want: Error{File: "compose.yaml", Line: 9, Service: "cache", Key: "volumes", Msg: `"" is not a volume (want [SOURCE:]TARGET[:MODE])`}},
		{name: "dependency cycle", files: map[string]string{"compose.yaml": web},
			msg:  "dependency cycle detected: web -> db -> web",
			want: Error{File: "compose.yaml", Line: 7, Service: "web", Key: "depends_on", Msg: "dependency cycle detected: web -> db -> web"}},
		{name: "port", files: map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    expose:\n      - \"80\"\n      - \"x\"\n"},
			msg:  "Invalid containerPort: x",
			want: Error{File: "compose.yaml", Line: 6, Service: "web", Key: "expose", Msg: `invalid port "x": Invalid containerPort: x`}},
		{name: "port not found", files: map[string]string{"compose.yaml": web},
			msg:  "No port specified: <empty>",
			want: Error{File: "compose.yaml", Key: "ports or expose", Msg: "No port specified: <empty>"}},
		{name: "service", files: map[string]string{"compose.yaml": web},
			msg:  `service "web" depends on undefined service "cache": invalid compose project`,
			want: Error{File: "compose.yaml", Line: 7, Service: "web", Key: "depends_on", Msg: `depends on undefined service "cache"`}},
		{name: "service without image: the first in the files", files: map[string]string{"compose.yaml": "services:\n  a:\n    image: nginx\n  b:\n    environment: [A=b]\n  c:\n    environment: [A=b]\n"},
			msg:  `service "c" has neither an image nor a build context specified: invalid compose project`,
			want: Error{File: "compose.yaml", Line: 4, Service: "b", Key: "image", Msg: "has neither an image nor a build context specified"}},
		{name: "services dot path", files: map[string]string{"compose.yaml": web},
			msg:  "services.db.volumes.0 conflicts with something",
			want: Error{File: "compose.yaml", Line: 13, Service: "db", Key: "volumes", Msg: "services.db.volumes.0 conflicts with something"}},
		{name: "unknown message, one file", files: map[string]string{"compose.yaml": web},
			msg:  "something else went wrong",
			want: Error{File: "compose.yaml", Msg: "something else went wrong"}},
		{name: "unknown message, several files", files: map[string]string{"compose.yaml": web, "b.yaml": "services: {}\n"},
			msg:  "something else went wrong",
			want: Error{Msg: "something else went wrong (in <dir>/compose.yaml, <dir>/b.yaml)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tree.Write(t, dir, c.files)
			files := []string{filepath.Join(dir, "compose.yaml")}
			if _, ok := c.files["b.yaml"]; ok && !strings.Contains(c.files["compose.yaml"], "b.yaml") {
				files = append(files, filepath.Join(dir, "b.yaml"))
			}
			msg := strings.ReplaceAll(c.msg, "<dir>", dir)
			msg = strings.ReplaceAll(msg, "validating compose.yaml", "validating "+files[0])
			msg = strings.ReplaceAll(msg, "parse compose.yaml", "parse "+files[0])
			orig := errors.New(msg)
			got := locate(orig, files, c.env)
			if got.Err != orig {
				t.Errorf("Err is %v, not compose-go's error", got.Err)
			}
			got.Err = nil
			if got.File != "" {
				rel, err := filepath.Rel(dir, got.File)
				if err != nil {
					t.Fatal(err)
				}
				got.File = rel
			}
			got.Msg = strings.ReplaceAll(got.Msg, dir, "<dir>")
			if *got != c.want {
				t.Errorf("\ngot  %s\nwant %s", show(got), show(&c.want))
			}
		})
	}
}

func show(e *Error) string {
	return fmt.Sprintf("file=%q line=%d service=%q key=%q msg=%q", e.File, e.Line, e.Service, e.Key, e.Msg)
}
