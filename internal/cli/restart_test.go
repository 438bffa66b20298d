package cli

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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

func TestRestartable(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{
		Spec: v1alpha1.EnvSpec{Project: "shop", Services: []v1alpha1.ServiceSpec{
			{Name: "api"}, {Name: "db"}, {Name: "migrate", Lifecycle: v1alpha1.OneShot}, {Name: "web"},
		}},
		Status: v1alpha1.EnvStatus{Services: []v1alpha1.ServiceStatus{
			{Name: "api", State: v1alpha1.StateWaiting, Reason: "WaitingForDependencies", WaitingFor: []string{"migrate"}},
		}},
	}
	deployments := map[string]*appsv1.Deployment{"db": {}, "web": {}}
	tests := []struct {
		name    string
		names   []string
		want    []string
		wantErr string
		log     string
	}{
		{name: "all: the started long-running ones", want: []string{"db", "web"},
			log: "api: not started yet, not restarted\nmigrate: one-shot service, not restarted\n"},
		{name: "named, in order, once", names: []string{"web", "db", "web"}, want: []string{"web", "db"}},
		{name: "one-shot", names: []string{"web", "migrate"},
			wantErr: "service migrate is a one-shot service (it runs once to completion, as a Kubernetes Job): it cannot be restarted"},
		{name: "not started", names: []string{"api"},
			wantErr: "service api has not been started yet (waiting, WaitingForDependencies, waiting for migrate)"},
		{name: "unknown", names: []string{"nope"}, wantErr: "no such service: nope (the services of project shop: api, db, migrate, web)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, stderr := iostreams.Test()
			status := ui.NewStatus(ios, ui.StatusOptions{NoTimestamps: true})
			got, err := restartable(env, tt.names, deployments, status)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("restartable = %q, want %q", got, tt.want)
			}
			if stderr.String() != tt.log {
				t.Errorf("status:\n%s\nwant:\n%s", stderr, tt.log)
			}
		})
	}
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
