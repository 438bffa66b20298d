package cli

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// login writes the credentials `ergomake login` would, for the factory's HOME.
func login(t *testing.T, f *Factory, url string) {
	t.Helper()
	path, err := credentialsPath(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.SaveCredentials(path, &server.Credentials{URL: url, Token: "ergomake_x", User: "alice"}); err != nil {
		t.Fatal(err)
	}
}

func TestServerSelection(t *testing.T) {
	t.Run("not logged in: the cluster", func(t *testing.T) {
		f, _, _ := testFactory(t)
		if c, err := serverClient(f, ClusterOptions{}); c != nil || err != nil {
			t.Fatalf("%v %v", c, err)
		}
		_, err := serverClient(f, ClusterOptions{Server: "https://srv.example.com"})
		if err == nil || !strings.Contains(err.Error(), "ergomake login https://srv.example.com") {
			t.Fatalf("--server without a login: %v", err)
		}
	})
	t.Run("logged in: the server, unless --kubeconfig or --context", func(t *testing.T) {
		f, _, _ := testFactory(t)
		login(t, f, "https://srv.example.com:31443")
		c, err := serverClient(f, ClusterOptions{})
		if err != nil || c == nil || c.URL() != "https://srv.example.com:31443" {
			t.Fatalf("%v %v", c, err)
		}
		for _, o := range []ClusterOptions{{Kubeconfig: filepath.Join(t.TempDir(), "kc")}, {Context: "kind"}} {
			if c, err := serverClient(f, o); c != nil || err != nil {
				t.Fatalf("%+v: %v %v", o, c, err)
			}
		}
		if c, err := serverClient(f, ClusterOptions{Server: "srv.example.com:31443"}); err != nil || c == nil {
			t.Fatalf("--server of the login: %v %v", c, err)
		}
		if _, err := serverClient(f, ClusterOptions{Server: "https://other.example.com"}); err == nil || !strings.Contains(err.Error(), "not logged in to the ergomake server https://other.example.com") {
			t.Fatalf("--server of another server: %v", err)
		}
		if _, err := serverClient(f, ClusterOptions{Server: "https://srv.example.com:31443", Context: "kind"}); err == nil {
			t.Fatal("--server with --context accepted")
		}
		if _, err := serverClient(f, ClusterOptions{Namespace: "team"}); err == nil || !strings.Contains(err.Error(), "-n/--namespace") {
			t.Fatalf("-n through the server: %v", err)
		}
	})
}

// TestLsPsDownThroughServer runs ls, ps and down against a server answering the contract's routes.
func TestLsPsDownThroughServer(t *testing.T) {
	created := time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)
	deleted := false
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, server.WhoAmI{User: "alice"})
	})
	mux.HandleFunc("GET /v1/envs", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, server.EnvList{Environments: []server.Env{{Name: "shop", Namespace: "ergomake-alice-shop", Phase: "Ready", Summary: "2/2", Created: created}}})
	})
	mux.HandleFunc("GET /v1/envs/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "shop" || deleted {
			reply(w, 404, server.ErrorBody{Error: "you have no environment"})
			return
		}
		reply(w, 200, &v1alpha1.ErgomakeEnv{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ergomake-alice-shop"},
			Spec: v1alpha1.EnvSpec{Project: "shop", Services: []v1alpha1.ServiceSpec{{Name: "web", Image: "nginx",
				Ports: []v1alpha1.PortSpec{{Target: 80, Publish: true, Published: "8080"}}}}},
			Status: v1alpha1.EnvStatus{Services: []v1alpha1.ServiceStatus{{Name: "web", State: v1alpha1.StateHealthy, Ready: 1, Desired: 1}}},
		})
	})
	mux.HandleFunc("DELETE /v1/envs/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "1" {
			t.Errorf("down did not wait: %s", r.URL)
		}
		deleted = true
		reply(w, 200, server.Deleted{Name: "shop", Namespace: "ergomake-alice-shop"})
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	f, stdout, stderr := testFactory(t)
	f.ServerClient = func(c *server.Credentials) (*server.Client, error) {
		c.CA = string(pemCert(srv.Certificate().Raw))
		return server.NewClient(c)
	}
	login(t, f, srv.URL)

	run := func(args ...string) error {
		stdout.Reset()
		stderr.Reset()
		root := NewCmdRoot(f)
		root.SetArgs(args)
		return root.Execute()
	}
	if err := run("ls", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var ls []lsEntry
	if err := json.Unmarshal(stdout.Bytes(), &ls); err != nil || len(ls) != 1 || ls[0].Namespace != "ergomake-alice-shop" ||
		ls[0].Ready != 2 || ls[0].Total != 2 || ls[0].Owner != "alice" {
		t.Fatalf("ls: %v %s", err, stdout)
	}
	if err := run("ps", "-p", "shop"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "8080->80/tcp") {
		t.Fatalf("ps:\n%s", stdout)
	}
	if err := run("down", "-p", "shop"); err != nil {
		t.Fatal(err)
	}
	if !deleted || !strings.Contains(stdout.String(), "Environment shop and namespace ergomake-alice-shop removed.") {
		t.Fatalf("down: %v\n%s", deleted, stdout)
	}
	if err := run("down", "-p", "shop"); err != nil || !strings.Contains(stdout.String(), "Nothing to do") {
		t.Fatalf("down again: %v\n%s", err, stdout)
	}
	// --kubeconfig goes to the cluster, not to the server.
	err := run("ps", "-p", "shop", "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if err == nil || strings.Contains(err.Error(), "ergomake server") {
		t.Fatalf("--kubeconfig: %v", err)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestUnauthorizedSaysLogIn: a refused token is one line saying to log in again.
func TestUnauthorizedSaysLogIn(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"error":"token revoked: log in again with a new token (` + "`ergomake login`" + `)"}`))
	}))
	defer srv.Close()
	f, _, _ := testFactory(t)
	f.ServerClient = func(c *server.Credentials) (*server.Client, error) {
		c.CA = string(pemCert(srv.Certificate().Raw))
		return server.NewClient(c)
	}
	login(t, f, srv.URL)
	root := NewCmdRoot(f)
	root.SetArgs([]string{"ls"})
	err := root.Execute()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "token revoked") || !strings.Contains(err.Error(), "ergomake login") {
		t.Fatalf("ls with a revoked token: %v", err)
	}
}

// TestExecRestartThroughServer: logged in, exec and restart go through the ergomake server, as
// the other commands do (here it has no such environment, and says so in the same words).
func TestExecRestartThroughServer(t *testing.T) {
	var paths []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		w.WriteHeader(404)
		_, _ = w.Write([]byte(`{"error":"you have no environment \"shop\""}`))
	}))
	defer srv.Close()
	f, _, _ := testFactory(t)
	f.ServerClient = func(c *server.Credentials) (*server.Client, error) {
		c.CA = string(pemCert(srv.Certificate().Raw))
		return server.NewClient(c)
	}
	login(t, f, srv.URL)
	for _, argv := range [][]string{{"exec", "-p", "shop", "web", "true"}, {"restart", "-p", "shop", "web"}} {
		paths = nil
		root := NewCmdRoot(f)
		root.SetArgs(argv)
		err := root.Execute()
		var nf *notFoundError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), `you have no environment of project "shop" on the ergomake server`) {
			t.Errorf("%s logged in: %v", argv[0], err)
		}
		if len(paths) != 1 || paths[0] != "GET /v1/envs/shop" {
			t.Errorf("%s asked the server %q", argv[0], paths)
		}
	}
}
