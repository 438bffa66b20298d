package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// connect builds the client of the cluster flags and checks the cluster answers and serves
// ErgomakeEnvs.
func connect(ctx context.Context, f *Factory, c ClusterOptions) (*kube.Client, error) {
	client, err := f.KubeClient(c)
	if err != nil {
		return nil, err
	}
	if err := client.Check(ctx); err != nil {
		return nil, err
	}
	return client, nil
}

// envTarget is the environment a command acts on, with the client that found it and the services
// its SERVICE arguments select (nil: all).
type envTarget struct {
	client *kube.Client
	// srv, instead of client: the environment was found through the ergomake server.
	srv  *server.Client
	env  *v1alpha1.ErgomakeEnv
	only map[string]bool
}

// openProject names the project of the project flags and connects to the cluster of the cluster
// flags.
func openProject(ctx context.Context, f *Factory, p ProjectOptions, c ClusterOptions) (string, *kube.Client, error) {
	project, err := projectName(ctx, f, p)
	if err != nil {
		return "", nil, err
	}
	client, err := connect(ctx, f, c)
	if err != nil {
		return "", nil, err
	}
	return project, client, nil
}

// openEnv finds the environment of the project the flags name on their cluster, and checks the
// SERVICE arguments against it.
func openEnv(ctx context.Context, f *Factory, p ProjectOptions, c ClusterOptions, services []string) (*envTarget, error) {
	return openEnvVia(ctx, f, p, c, services, false)
}

// openEnvVia is openEnv of a command that goes through the ergomake server when logged in
// (viaServer: it has --server).
func openEnvVia(ctx context.Context, f *Factory, p ProjectOptions, c ClusterOptions, services []string, viaServer bool) (*envTarget, error) {
	var srv *server.Client
	var err error
	if viaServer {
		srv, err = serverClient(f, c)
	}
	if err != nil {
		return nil, err
	}
	if srv != nil {
		project, err := projectName(ctx, f, p)
		if err != nil {
			return nil, err
		}
		env, err := serverEnv(ctx, srv, project)
		if err != nil {
			return nil, err
		}
		only, err := serviceFilter(env, services)
		if err != nil {
			return nil, err
		}
		return &envTarget{srv: srv, env: env, only: only}, nil
	}
	project, client, err := openProject(ctx, f, p, c)
	if err != nil {
		return nil, err
	}
	env, err := findEnv(ctx, client, project)
	if err != nil {
		return nil, err
	}
	only, err := serviceFilter(env, services)
	if err != nil {
		return nil, err
	}
	return &envTarget{client: client, env: env, only: only}, nil
}

// loadProject loads the compose project of the project flags.
func loadProject(ctx context.Context, f *Factory, p ProjectOptions) (*types.Project, error) {
	copts, err := p.composeOptions(f)
	if err != nil {
		return nil, err
	}
	return compose.Load(ctx, copts)
}

// projectName is the project the flags name: -p (or $COMPOSE_PROJECT_NAME) without reading any
// compose file, else the loaded project's name.
func projectName(ctx context.Context, f *Factory, p ProjectOptions) (string, error) {
	if p.ProjectName != "" {
		return p.ProjectName, nil
	}
	if n := f.Getenv("COMPOSE_PROJECT_NAME"); n != "" && len(p.Files) == 0 {
		return n, nil
	}
	project, err := loadProject(ctx, f, p)
	if err != nil {
		return "", err
	}
	return project.Name, nil
}

// findEnv finds the environment of a project: in -n's namespace when given, else in any
// namespace (the default one, ergomake-<project>, first).
func findEnv(ctx context.Context, client *kube.Client, project string) (*v1alpha1.ErgomakeEnv, error) {
	ns := ""
	if client.NamespaceExplicit {
		ns = client.Namespace
	}
	envs, err := client.ListEnvs(ctx, ns)
	if ns == "" && apierrors.IsForbidden(err) {
		// Not allowed to list every namespace: look where up puts it by default.
		ns = client.EnvNamespace(project)
		envs, err = client.ListEnvs(ctx, ns)
	}
	if err != nil {
		return nil, err
	}
	var found []v1alpha1.ErgomakeEnv
	for _, e := range envs {
		if e.Spec.Project == project {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		where := "on " + client.String()
		if ns != "" {
			where = "in namespace " + ns + " of " + client.String()
		}
		return nil, &notFoundError{msg: fmt.Sprintf("no environment of project %q %s", project, where)}
	case 1:
		return &found[0], nil
	}
	for i := range found {
		if found[i].Namespace == kube.DefaultNamespace(found[i].Name) {
			return &found[i], nil
		}
	}
	var nss []string
	for _, e := range found {
		nss = append(nss, e.Namespace)
	}
	sort.Strings(nss)
	return nil, fmt.Errorf("project %q has environments in several namespaces (%s): choose one with -n",
		project, strings.Join(nss, ", "))
}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

// ownerName is user@host, recorded on the environments `up` creates.
func ownerName(f *Factory) string {
	name := f.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return name + "@" + host
}

// downCommand is the `ergomake down` command line that removes this environment.
func downCommand(c ClusterOptions, project, namespace string) string {
	args := []string{"ergomake", "down", "-p", shellQuote(project), "-n", shellQuote(namespace)}
	if c.Context != "" {
		args = append(args, "--context", shellQuote(c.Context))
	}
	if c.Kubeconfig != "" {
		args = append(args, "--kubeconfig", shellQuote(c.Kubeconfig))
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// completeServices completes compose service names (logs, ps, forward) from the project the
// command's flags name.
func completeServices(f *Factory, p *ProjectOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		project, err := loadProject(cmd.Context(), f, *p)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		seen := map[string]bool{}
		for _, a := range args {
			seen[a] = true
		}
		var out []cobra.Completion
		for _, name := range project.ServiceNames() {
			if !seen[name] && strings.HasPrefix(name, toComplete) {
				out = append(out, name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// serviceFilter checks the SERVICE arguments against the environment's services.
func serviceFilter(env *v1alpha1.ErgomakeEnv, names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	for _, s := range env.Spec.Services {
		known[s.Name] = true
	}
	want := map[string]bool{}
	for _, n := range names {
		if !known[n] {
			return nil, fmt.Errorf("no such service: %s", n)
		}
		want[n] = true
	}
	return want, nil
}
