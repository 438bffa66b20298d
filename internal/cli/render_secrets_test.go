package cli

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/internal/testutil/tree"
)

// TestRenderHidesSecretValues: no value of environment, env_file, a compose secret or a private
// bind-mounted file reaches render's output, in any form (ARCHITECTURE.md decision 15); the keys
// and the redaction mark do.
func TestRenderHidesSecretValues(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		tree.File(t, filepath.Join(dir, name), content, mode)
	}
	values := []string{"inline-value-7f3a", "from-env-file-91c2", "compose-secret-55d0", "private-file-c0ffee", "dot-env-file-ab12", "pem-body-e4e4"}
	write("compose.yaml", `services:
  app:
    image: ergomake.test/testapp
    environment:
      API_TOKEN: inline-value-7f3a
    env_file: app.env
    secrets: [token]
    volumes:
      - ./conf:/conf:ro
      - ./private:/private:ro
secrets:
  token:
    file: ./token.txt
`, 0o644)
	write("app.env", "FROM_FILE=from-env-file-91c2\n", 0o644)
	write("token.txt", "compose-secret-55d0", 0o644)
	write("conf/app.conf", "listen 80\n", 0o644)
	write("private/id_rsa", "private-file-c0ffee", 0o600)
	write("private/.env.local", "X=dot-env-file-ab12", 0o644)
	write("private/tls/server.pem", "pem-body-e4e4", 0o644)

	for _, format := range []string{"yaml", "json"} {
		f, stdout, stderr := testFactory(t)
		if code := Run(context.Background(), f, []string{"render", "-f", filepath.Join(dir, "compose.yaml"), "-o", format}); code != 0 {
			t.Fatalf("%s: exit code %d: %s", format, code, stderr)
		}
		out := stdout.String() + stderr.String()
		for _, v := range values {
			for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if strings.Contains(out, form) {
					t.Errorf("%s: the output holds %q", format, form)
				}
			}
		}
		for _, want := range []string{"API_TOKEN", "FROM_FILE", redacted, annotationRedacted, "listen 80"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the output lacks %q", format, want)
			}
		}
	}
}
