package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/imagebuild"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func kepConfigMap(data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-public", Name: "local-registry-hosting"},
		Data:       map[string]string{"localRegistryHosting.v1": data},
	}
}

func TestRegistryFor(t *testing.T) {
	installed := clustersettings.Settings{RegistryPush: "ergomake-registry.ergomake-system.svc:5000", RegistryPull: "127.0.0.1:5100"}
	kind := kepConfigMap("host: \"localhost:5001\"\nhostFromContainerRuntime: \"kind-registry:5000\"\nhostFromClusterNetwork: \"kind-registry.svc:5000\"\nhelp: https://kind.sigs.k8s.io/docs/user/local-registry/\n")
	hostOnly := kepConfigMap("host: \"localhost:5000\"\n")
	tests := []struct {
		name     string
		settings clustersettings.Settings
		objects  []*corev1.ConfigMap
		user     string
		want     imagebuild.Registry
		err      string
	}{
		{name: "user's registry wins", settings: installed, objects: []*corev1.ConfigMap{kind}, user: "https://registry.example.com/team/",
			want: imagebuild.Registry{Push: "registry.example.com/team", Pull: "registry.example.com/team"}},
		{name: "user's plain HTTP registry", settings: installed, user: "http://10.200.0.1:32000/proj",
			want: imagebuild.Registry{Push: "10.200.0.1:32000/proj", Pull: "10.200.0.1:32000/proj", Insecure: true}},
		{name: "installed registry over KEP-1755", settings: installed, objects: []*corev1.ConfigMap{kind},
			want: imagebuild.Registry{Push: "ergomake-registry.ergomake-system.svc:5000", Pull: "127.0.0.1:5100", Insecure: true}},
		{name: "KEP-1755", objects: []*corev1.ConfigMap{kind},
			want: imagebuild.Registry{Push: "kind-registry.svc:5000", Pull: "kind-registry:5000", Insecure: true}},
		{name: "KEP-1755 host only", objects: []*corev1.ConfigMap{hostOnly},
			want: imagebuild.Registry{Push: "localhost:5000", Pull: "localhost:5000", Insecure: true}},
		{name: "KEP-1755 unreadable", objects: []*corev1.ConfigMap{kepConfigMap(": not yaml [")}, err: "no registry for built images"},
		{name: "none", err: "no registry for built images"},
		{name: "bad --registry", user: "registry.example.com/a b", err: "not a registry reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			for _, cm := range tt.objects {
				if _, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := registryFor(context.Background(), cs, tt.settings, tt.user)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("registryFor = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func writeDockerConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPullSecret(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("dev:s3cret"))
	dir := writeDockerConfig(t, `{"auths": {
		"registry.example.com:5000": {"auth": "`+auth+`"},
		"https://index.docker.io/v1/": {"username": "hubuser", "password": "hubpass"},
		"other.example.com": {}
	}}`)
	s, err := pullSecret("registry.example.com:5000/team/app", dir)
	if err != nil || s == nil {
		t.Fatalf("pullSecret = %v, %v", s, err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Name != "ergomake-pull-registry.example.com-5000" {
		t.Errorf("secret %s of type %s", s.Name, s.Type)
	}
	var cfg struct {
		Auths map[string]imagebuild.Credentials `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Auths) != 1 || cfg.Auths["registry.example.com:5000"].Auth != auth || cfg.Auths["registry.example.com:5000"].Password != "s3cret" {
		t.Errorf("auths: %+v (only this registry's credentials belong in the secret)", cfg.Auths)
	}

	// Docker Hub: a bare repository, credentials filed under Hub's URL.
	s, err = pullSecret("myorg", dir)
	if err != nil || s == nil || s.Name != "ergomake-pull-docker.io" {
		t.Fatalf("hub: %v, %v", s, err)
	}
	if !strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), base64.StdEncoding.EncodeToString([]byte("hubuser:hubpass"))) {
		t.Errorf("hub auth missing: %s", s.Data[corev1.DockerConfigJsonKey])
	}

	// No credentials (a public registry, or none configured): no secret.
	for _, ref := range []string{"other.example.com/x", "unknown.example.com"} {
		if s, err := pullSecret(ref, dir); s != nil || err != nil {
			t.Errorf("%s: %v, %v; want no secret", ref, s, err)
		}
	}
	if s, err := pullSecret("registry.example.com:5000", t.TempDir()); s != nil || err != nil {
		t.Errorf("no config.json: %v, %v", s, err)
	}
	if _, err := pullSecret("registry.example.com:5000", writeDockerConfig(t, "{")); err == nil {
		t.Error("a broken config.json is not reported")
	}
}

func TestBuiltApply(t *testing.T) {
	digest := "sha256:" + strings.Repeat("c", 64)
	res := &translate.Result{Env: &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ergomake-p"},
		Spec: v1alpha1.EnvSpec{Services: []v1alpha1.ServiceSpec{
			{Name: "db", Image: "postgres:16"},
			{Name: "web", Image: "127.0.0.1:5100/p/web:k0", Build: &v1alpha1.BuildSpec{Image: "127.0.0.1:5100/p/web:k0"}},
		}},
	}}
	b := &Built{
		Specs:      map[string]v1alpha1.BuildSpec{"web": {Key: "k1", Image: "registry.example.com/p/web:k1", Digest: digest}},
		PullSecret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ergomake-pull-registry.example.com"}},
	}
	b.Apply(res)
	db, web := res.Env.Spec.Services[0], res.Env.Spec.Services[1]
	if db.Image != "postgres:16" || db.Build != nil {
		t.Errorf("db changed: %+v", db)
	}
	if web.Image != "registry.example.com/p/web@"+digest || web.Build.Key != "k1" || web.Build.Digest != digest {
		t.Errorf("web: image %q build %+v", web.Image, web.Build)
	}
	if len(res.Secrets) != 1 || res.Secrets[0].Namespace != "ergomake-p" ||
		strings.Join(res.Env.Spec.ImagePullSecrets, ",") != "ergomake-pull-registry.example.com" {
		t.Errorf("pull secret: %v, %v", res.Secrets, res.Env.Spec.ImagePullSecrets)
	}
	(*Built)(nil).Apply(res) // nothing built: nothing changes
	(&Built{}).Apply(res)
	if len(res.Secrets) != 1 {
		t.Error("an empty build changed the result")
	}
}

func TestBuiltServices(t *testing.T) {
	svc := func(name, image string, build *types.BuildConfig) types.ServiceConfig {
		s := types.ServiceConfig{Name: name}
		s.Image, s.Build = image, build
		return s
	}
	p := &types.Project{Name: "p", Services: types.Services{
		"web": svc("web", "", &types.BuildConfig{Context: "."}),
		"api": svc("api", "x", &types.BuildConfig{Context: "api"}),
		"db":  svc("db", "postgres", nil),
	}}
	if got, err := BuiltServices(p, nil); err != nil || strings.Join(got, ",") != "api,web" {
		t.Errorf("all: %v, %v", got, err)
	}
	if got, err := BuiltServices(p, []string{"web"}); err != nil || strings.Join(got, ",") != "web" {
		t.Errorf("web: %v, %v", got, err)
	}
	for only, want := range map[string]string{"db": `service "db" has no build: section`, "nope": `no service "nope"`} {
		if _, err := BuiltServices(p, []string{only}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", only, err, want)
		}
	}
	if got, err := BuiltServices(nil, nil); got != nil || err != nil {
		t.Errorf("no project: %v, %v", got, err)
	}
}

func TestBuildDisplayThroughLogf(t *testing.T) {
	rec := &recorder{}
	out, tty, end := buildDisplay(rec, "Building 2 images")
	if tty {
		t.Error("a Reporter without a display of its own is no terminal")
	}
	_, _ = out.Write([]byte("web | #1 [internal] load build definition\nweb | #1 DONE 0.1s\napi | #2 RUN"))
	_, _ = out.Write([]byte(" make\n\napi | #2 ERROR"))
	end(false)
	want := strings.Join([]string{
		"log Building 2 images",
		"log web | #1 [internal] load build definition",
		"log web | #1 DONE 0.1s",
		"log api | #2 RUN make",
		"log ",
		"log api | #2 ERROR",
	}, "\n")
	if rec.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", rec, want)
	}
}

// TestBuildNoBuilder: on a cluster without ergomake's settings, or whose settings name no builder
// (installed before builds existed), a build is one error saying to run `ergomake install`, and
// nothing is asked of the cluster beyond reading the settings.
func TestBuildNoBuilder(t *testing.T) {
	web := types.ServiceConfig{Name: "web"}
	web.Build = &types.BuildConfig{Context: "."}
	p := &types.Project{Name: "p", WorkingDir: t.TempDir(), Services: types.Services{"web": web}}
	noBuilder := clustersettings.Defaults()
	noBuilder.BuilderSelector, noBuilder.BuilderPort = "", 0
	for name, cs := range map[string]*fake.Clientset{
		"not installed":       fake.NewClientset(),
		"installed, no build": fake.NewClientset(noBuilder.ConfigMap()),
	} {
		t.Run(name, func(t *testing.T) {
			before := len(cs.Actions())
			_, err := Build(context.Background(), &kube.Client{Kube: cs}, &recorder{}, BuildOptions{Project: p}, "ergomake-p")
			if !errors.Is(err, ErrNoBuilder) || !strings.Contains(err.Error(), "run `ergomake install`") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Build = %v; want one line saying to run ergomake install", err)
			}
			for _, a := range cs.Actions()[before:] {
				if a.GetVerb() != "get" || a.GetResource().Resource != "configmaps" {
					t.Errorf("Build did %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
	// a project without build: needs no builder
	if b, err := Build(context.Background(), &kube.Client{Kube: fake.NewClientset()}, &recorder{}, BuildOptions{Project: &types.Project{Name: "p"}}, "ns"); err != nil || b == nil || len(b.Specs) != 0 {
		t.Errorf("nothing to build: %+v, %v", b, err)
	}
}

// TestAwaitBuilder: a builder pod that is starting (or replaced by an install) is waited for,
// saying so once; no builder pod at all, another error, or a wait past builderWait is the error
// that says to install the builder; Ctrl-C ends the wait.
func TestAwaitBuilder(t *testing.T) {
	defer func(w, p time.Duration) { builderWait, builderPoll = w, p }(builderWait, builderPoll)
	builderWait, builderPoll = time.Minute, time.Millisecond
	starting := fmt.Errorf("%w: 1 pod(s) match x; the newest, b-1, is being deleted", forward.ErrNoReadyPod)
	sequence := func(errs ...error) func(context.Context) error {
		i := 0
		return func(context.Context) error {
			err := errs[min(i, len(errs)-1)]
			i++
			return err
		}
	}

	rep := &recorder{}
	if err := awaitBuilder(context.Background(), rep, "ergomake-system", sequence(starting, starting, nil)); err != nil {
		t.Fatalf("a builder that becomes ready: %v", err)
	}
	if got := rep.String(); strings.Count(got, "Waiting for the image builder") != 1 || !strings.Contains(got, "being deleted") {
		t.Errorf("said %q, want one line saying why it waits", got)
	}

	for name, errs := range map[string][]error{
		"no builder pod": {fmt.Errorf("%w x in namespace ergomake-system", forward.ErrNoPodMatches)},
		"listing fails":  {errors.New("pods is forbidden")},
	} {
		rep := &recorder{}
		err := awaitBuilder(context.Background(), rep, "ergomake-system", sequence(errs...))
		if err == nil || !strings.Contains(err.Error(), "`ergomake install` installs it") || rep.String() != "" {
			t.Errorf("%s: %v (said %q), want the install error at once", name, err, rep.String())
		}
	}

	builderWait = 20 * time.Millisecond
	if err := awaitBuilder(context.Background(), &recorder{}, "ergomake-system", sequence(starting)); err == nil || !strings.Contains(err.Error(), "being deleted") {
		t.Errorf("past the wait: %v, want the install error naming why", err)
	}

	builderWait = time.Minute
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrCancel)
	if err := awaitBuilder(ctx, &recorder{}, "ergomake-system", sequence(starting)); !errors.Is(err, ErrCancel) {
		t.Errorf("Ctrl-C: %v, want ErrCancel", err)
	}
}
