package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Through the server (ARCHITECTURE.md decision 16): once logged in (`ergomake login`, login.json)
// or with --server, up, down, ps, ls, logs, forward and build go through the ergomake server
// instead of the cluster, unless --kubeconfig or --context is given.

// addServerFlag registers --server (a setting: ERGOMAKE_SERVER, the config file).
func addServerFlag(cmd *cobra.Command, c *ClusterOptions) {
	fs := cmd.Flags()
	defer groupNewFlags(fs, groupCluster)()
	fs.StringVar(&c.Server, "server", "", "go through this ergomake server (its URL, logged in with `ergomake login`; default: the server you are logged in to, unless --kubeconfig or --context is given)")
	config.MarkSetting(fs, "server")
}

// serverClient is the client of the ergomake server the command goes through; nil when it talks
// to the cluster itself: --kubeconfig or --context given, or neither --server nor a login.
func serverClient(f *Factory, c ClusterOptions) (*server.Client, error) {
	if c.Kubeconfig != "" || c.Context != "" {
		if c.Server != "" {
			return nil, FlagErrorf("--server goes through the ergomake server, --kubeconfig and --context to the cluster: give one or the other")
		}
		return nil, nil
	}
	path, perr := credentialsPath(f)
	if perr != nil && c.Server == "" {
		return nil, nil
	}
	var creds *server.Credentials
	var err error
	if perr == nil {
		creds, err = server.LoadCredentials(path)
	} else {
		err = perr
	}
	if c.Server == "" {
		if errors.Is(err, server.ErrNotLoggedIn) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	} else {
		u, uerr := server.NormalizeURL(c.Server)
		if uerr != nil {
			return nil, FlagErrorf("--server: %v", uerr)
		}
		if errors.Is(err, server.ErrNotLoggedIn) || (err == nil && creds.URL != u.String()) {
			return nil, fmt.Errorf("not logged in to the ergomake server %s: run `ergomake login %s --token TOKEN`", u, u)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.Namespace != "" {
		return nil, FlagErrorf("-n/--namespace cannot be chosen through the ergomake server: your environments live in namespaces of your own (ergomake-<user>-<project>); --kubeconfig or --context goes to the cluster instead")
	}
	return f.ServerClient(creds)
}

// serverError is what the command says of the server's answer: a refused token as one line
// saying to log in again.
func serverError(c *server.Client, err error) error {
	var ae *server.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return &session.LoggedOutError{Server: c.Host(), Err: ae}
	}
	return err
}

// serverEnv finds the caller's environment of project on the server.
func serverEnv(ctx context.Context, c *server.Client, project string) (*v1alpha1.ErgomakeEnv, error) {
	env, err := c.GetEnv(ctx, project)
	if server.IsStatus(err, http.StatusNotFound) {
		return nil, &notFoundError{msg: fmt.Sprintf("you have no environment of project %q on the ergomake server %s", project, c.Host())}
	}
	if err != nil {
		return nil, serverError(c, err)
	}
	return env, nil
}

// serverDownCommand is the `ergomake down` command line that removes an environment through the
// server.
func serverDownCommand(c ClusterOptions, project string) string {
	cmd := "ergomake down -p " + shellQuote(project)
	if c.Server != "" {
		cmd += " --server " + shellQuote(c.Server)
	}
	return cmd
}
