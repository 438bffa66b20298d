package cli

import (
	"path/filepath"
	"testing"
	"time"
)

func TestRestartOptions(t *testing.T) {
	testOptions(t, NewCmdRestart, []optionsCase[RestartOptions]{
		{name: "all services", argv: "", want: RestartOptions{WaitTimeout: 5 * time.Minute}},
		{
			name: "services and flags",
			argv: "web --wait-timeout 1m worker -p shop -n ns",
			want: RestartOptions{Services: []string{"web", "worker"}, WaitTimeout: time.Minute,
				Project: ProjectOptions{ProjectName: "shop"}, Cluster: ClusterOptions{Namespace: "ns"}},
		},
		{name: "zero timeout", argv: "--wait-timeout 0s", wantErr: "--wait-timeout must be positive, got 0s"},
		{name: "unknown flag", argv: "-t 5", wantErr: "unknown shorthand flag: 't'"},
	})
}

// TestExecRestartCompletion: exec completes a service name as its first argument only (then the
// command's arguments are files); restart completes every service not already named.
func TestExecRestartCompletion(t *testing.T) {
	file := filepath.Join(repoTestdata(t), "webapp", "compose.yaml")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"exec", "-f", file, ""}, "app\ncache\ndb\nweb\n:4\n"},
		{[]string{"exec", "-f", file, "c"}, "cache\n:4\n"},
		{[]string{"exec", "-f", file, "web", ""}, ":0\n"},
		{[]string{"restart", "-f", file, "web", ""}, "app\ncache\ndb\n:4\n"},
	}
	for _, tt := range tests {
		f, stdout, _ := testFactory(t)
		if code := Run(t.Context(), f, append([]string{"__complete"}, tt.args...)); code != 0 {
			t.Fatalf("%q: exit %d", tt.args, code)
		}
		if stdout.String() != tt.want {
			t.Errorf("%q: completions %q, want %q", tt.args, stdout.String(), tt.want)
		}
	}
}
