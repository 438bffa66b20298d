package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/policy"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// `up` and `down` through the server: apply, read, watch, heartbeat, detach (delete is in
// handler.go). Every route acts only on the caller's own environment, in Namespace(user, name):
// another user's is not found, exactly as one that does not exist.

// DefaultEnvTTL is the TTL of an environment whose ApplyRequest names none (the CLI's attached
// default).
const DefaultEnvTTL = 10 * time.Minute

// DefaultMaxApplyBody bounds POST /v1/envs's body: the project and the files it ships.
const DefaultMaxApplyBody = 32 << 20

// watchKeepAlive: how often a watch with nothing to say writes an empty line (a variable for the
// tests).
var watchKeepAlive = 15 * time.Second

// defaultHeartbeatEvery is a session's heartbeat interval when it names none; a heartbeat older
// than staleAfter of them says the session is gone (as internal/session judges it).
const (
	defaultHeartbeatEvery = 20 * time.Second
	staleAfter            = 3
)

// reProject is a compose project name (compose-go normalizes names to it).
var reProject = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func checkName(name string) error {
	if !reProject.MatchString(name) || len(name) > 253 {
		return errorf(http.StatusBadRequest, "bad environment name %q: a compose project name is lower-case letters, digits, - and _", name)
	}
	return nil
}

// streamed is the answer of a handler that wrote its own (a stream): action writes nothing more.
type streamed struct{}

// client is the server's cluster client for environments.
func (t *Tenancy) client() *kube.Client {
	return &kube.Client{Config: t.Rest, Kube: t.Kube, Dynamic: t.Dynamic, ClusterName: "the cluster"}
}

func (t *Tenancy) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// EnvNamespace is the namespace of user's environment name, ErrNotFound unless it is user's.
func (t *Tenancy) EnvNamespace(ctx context.Context, user, name string) (string, error) {
	ns, err := t.Kube.CoreV1().Namespaces().Get(ctx, Namespace(user, name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && !ownedBy(ns, user)) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading namespace %s: %w", Namespace(user, name), err)
	}
	return ns.Name, nil
}

// GetEnv returns user's environment name, ErrNotFound when user has none of that name.
func (t *Tenancy) GetEnv(ctx context.Context, user, name string) (*v1alpha1.ErgomakeEnv, error) {
	ns, err := t.EnvNamespace(ctx, user, name)
	if err != nil {
		return nil, err
	}
	env, err := t.client().GetEnv(ctx, ns, kube.EnvName(name))
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	return public(env), err
}

// public is env as the API shows it: without the API server's bookkeeping of field managers.
func public(env *v1alpha1.ErgomakeEnv) *v1alpha1.ErgomakeEnv {
	if env != nil {
		env.ManagedFields = nil
	}
	return env
}

// decode reads the request's JSON body into v.
func decode(c *call, v any) error {
	dec := json.NewDecoder(c.r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "malformed request body: %v", err)
	}
	return nil
}

func parseTTL(s, what string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errorf(http.StatusBadRequest, "bad %s %q: want a duration such as 10m or 2h", what, s)
	}
	return d, nil
}

// ceiling is the pod security level server users' environments are checked against: the
// install's, never above baseline.
func (h *Handler) ceiling(ctx context.Context) policy.Level {
	if h.tenancy.podSecurity(ctx) == string(policy.Restricted) {
		return policy.Restricted
	}
	return policy.Baseline
}

func (h *Handler) applyEnv(c *call) (any, error) {
	var req ApplyRequest
	if err := decode(c, &req); err != nil {
		return nil, err
	}
	p, err := translate.DecodeProject(req.Project)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	c.env = p.Name
	if err := checkName(p.Name); err != nil {
		return nil, err
	}
	files, err := translate.MapFiles(req.Files)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	ttl, err := parseTTL(req.TTL, "ttl")
	if err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = DefaultEnvTTL
	}
	sess := req.Session
	if sess.ID == "" {
		return nil, errorf(http.StatusBadRequest, "no session id")
	}
	if sess.HeartbeatEvery.Duration <= 0 {
		sess.HeartbeatEvery.Duration = defaultHeartbeatEvery
	}
	if min := staleAfter * sess.HeartbeatEvery.Duration; ttl < min {
		return nil, errorf(http.StatusBadRequest, "ttl %s is shorter than three heartbeats (%s)", ttl, min)
	}
	user := c.who.User
	sess.User = user // the token's, whatever the client says
	ctx := c.r.Context()

	// The server never trusts the client: it translates the project again, from the files the
	// client shipped and nothing else, and checks it against the ceiling before anything exists.
	ns := Namespace(user, p.Name)
	res, err := translate.Translate(p, translate.Options{Namespace: ns, TTL: ttl, Builds: req.Builds, Files: files})
	if err != nil {
		return nil, errorf(http.StatusUnprocessableEntity, "%v", err)
	}
	pull, err := pullSecrets(req.PullSecrets, ns)
	if err != nil {
		return nil, err
	}
	res.Secrets = append(res.Secrets, pull...)
	for _, sec := range pull {
		res.Env.Spec.ImagePullSecrets = append(res.Env.Spec.ImagePullSecrets, sec.Name)
	}
	level := h.ceiling(ctx)
	if vs := policy.CheckFiles(p, &res.Env.Spec, level, files); len(vs) > 0 {
		lines := make([]string, len(vs))
		for i, v := range vs {
			lines[i] = v.String()
		}
		return nil, errorf(http.StatusForbidden, "the project exceeds the server's pod security ceiling %q; nothing was applied:\n%s", level, strings.Join(lines, "\n"))
	}

	if _, err := h.tenancy.EnsureNamespace(ctx, user, p.Name); err != nil {
		return nil, err
	}
	kc := h.tenancy.client()
	existing, err := kc.GetEnv(ctx, ns, res.Env.Name)
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return nil, err
	}
	if existing != nil && existing.DeletionTimestamp != nil {
		return nil, errorf(http.StatusConflict, "environment %s is still being deleted: try again in a moment", p.Name)
	}
	now := h.tenancy.now()
	if msg := inUse(existing, sess.ID, p.Name, now); msg != "" {
		return nil, errorf(http.StatusConflict, "%s", msg)
	}
	annotations := map[string]string{
		v1alpha1.AnnotationOwner:   user + "@" + sess.Host,
		v1alpha1.AnnotationSession: sess.Annotation(),
	}
	creator := &v1alpha1.Creator{Username: user}
	if existing != nil {
		creator, _ = v1alpha1.EnvCreator(existing) // the creator stays who it was
	}
	if creator != nil {
		annotations[v1alpha1.AnnotationCreator] = creator.Annotation()
	}
	out, err := kc.ApplyEnvironment(ctx, kube.EnvApply{Env: res.Env, Secrets: res.Secrets, ConfigMaps: res.ConfigMaps,
		Existing: existing, OwnNamespace: true, Annotations: annotations, Now: now})
	if err != nil {
		if existing == nil {
			// A new environment half applied: remove it, so that it neither lingers nor counts
			// against the user's limit (the client does not know it was created).
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_, _ = h.tenancy.DeleteEnv(dctx, user, p.Name)
			cancel()
		}
		return nil, err
	}
	resp := ApplyResponse{Env: public(out.Env), Created: existing == nil}
	for _, w := range res.Warnings {
		resp.Warnings = append(resp.Warnings, w.String())
	}
	return resp, nil
}

// pullSecretPrefix starts the name of every image pull secret a client may send (the CLI names
// them ergomake-pull-HOST), so that they never take the name of one of the project's Secrets.
const pullSecretPrefix = "ergomake-pull-"

// pullSecrets are the Secrets of ApplyRequest.PullSecrets in namespace ns: each a docker config
// (.dockerconfigjson) with credentials for at least one registry. 400 for anything else.
func pullSecrets(in map[string][]byte, ns string) ([]*corev1.Secret, error) {
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*corev1.Secret
	for _, name := range names {
		if !strings.HasPrefix(name, pullSecretPrefix) {
			return nil, errorf(http.StatusBadRequest, "pull secret %q: its name must start with %q", name, pullSecretPrefix)
		}
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			return nil, errorf(http.StatusBadRequest, "pull secret %q: %s", name, strings.Join(msgs, "; "))
		}
		var cfg struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if err := json.Unmarshal(in[name], &cfg); err != nil || len(cfg.Auths) == 0 {
			return nil, errorf(http.StatusBadRequest, "pull secret %q: not a docker config with credentials (%s)", name, nonNil(err, "no auths"))
		}
		out = append(out, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: in[name]},
		})
	}
	return out, nil
}

// nonNil is err's message, or def when err is nil.
func nonNil(err error, def string) string {
	if err != nil {
		return err.Error()
	}
	return def
}

// inUse says why the session id may not attach to env ("" when it may): another session is
// attached and live (its heartbeat younger than three of its intervals, by the server's clock,
// which wrote it).
func inUse(env *v1alpha1.ErgomakeEnv, id, project string, now time.Time) string {
	if env == nil {
		return ""
	}
	sess, err := v1alpha1.EnvSession(env)
	if err != nil || sess == nil || sess.ID == id {
		return ""
	}
	hb, ok := v1alpha1.EnvHeartbeat(env)
	if !ok {
		return ""
	}
	every := sess.HeartbeatEvery.Duration
	if every <= 0 {
		every = defaultHeartbeatEvery
	}
	if now.Sub(hb) >= staleAfter*every {
		return ""
	}
	who := sess.User
	if who == "" {
		who = "someone"
	}
	ago := now.Sub(hb).Round(time.Second)
	beat := fmt.Sprintf("last heartbeat %s ago", ago)
	if ago < time.Second {
		beat = "heartbeat just now"
	}
	return fmt.Sprintf("environment %s is in use: %s is attached with `ergomake up` on host %s (pid %d) since %s (%s).\n"+
		"  To reach its services without owning its teardown, run: ergomake forward\n"+
		"  To bring up a separate copy, run: ergomake up -p %s-2 (any other project name)",
		project, who, sess.Host, sess.PID, sess.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"), beat, project)
}

// callerEnv is the caller's environment of the route's {name}.
func (h *Handler) callerEnv(c *call) (*v1alpha1.ErgomakeEnv, error) {
	name := c.r.PathValue("name")
	c.env = name
	if err := checkName(name); err != nil {
		return nil, err
	}
	return h.tenancy.GetEnv(c.r.Context(), c.who.User, name)
}

func (h *Handler) getEnv(c *call) (any, error) {
	return h.callerEnv(c)
}

// longRequest lifts the server's read and write deadlines for a request that lasts (a stream, a
// wait): it ends when it is done or the client goes away.
func longRequest(w http.ResponseWriter) *http.ResponseController {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	return rc
}

func (h *Handler) watchEnv(c *call) (any, error) {
	env, err := h.callerEnv(c)
	if err != nil {
		return nil, err
	}
	rc := longRequest(c.w)
	c.w.Header().Set("Content-Type", "application/x-ndjson")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	// A shutdown ends watches at once: the client watches again, through the other replica.
	ctx, cancel := h.untilDrain(c.r.Context())
	defer cancel()
	var mu sync.Mutex
	write := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if _, err := c.w.Write(b); err != nil {
			cancel()
			return
		}
		if err := rc.Flush(); err != nil {
			cancel()
		}
	}
	send := func(ev WatchEvent) {
		b, _ := json.Marshal(ev)
		write(append(b, '\n'))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(watchKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				write([]byte("\n"))
			}
		}
	}()
	err = wait.Watch(ctx, h.tenancy.client(), env.Namespace, env.Name, func(e *v1alpha1.ErgomakeEnv) { send(WatchEvent{Env: public(e)}) })
	switch {
	case errors.Is(err, wait.ErrGone):
		send(WatchEvent{Deleted: true})
	case err != nil:
		c.note = err.Error()
		send(WatchEvent{Error: err.Error()})
	}
	cancel()
	<-done
	return streamed{}, nil
}

// sessionEnv decodes a SessionRequest and returns it with the caller's environment.
func (h *Handler) sessionEnv(c *call) (*v1alpha1.ErgomakeEnv, SessionRequest, error) {
	var req SessionRequest
	env, err := h.callerEnv(c)
	if err != nil {
		return nil, req, err
	}
	if err := decode(c, &req); err != nil {
		return nil, req, err
	}
	if req.Session == "" && !req.Forward {
		return nil, req, errorf(http.StatusBadRequest, "no session id")
	}
	return env, req, nil
}

func (h *Handler) heartbeat(c *call) (any, error) {
	env, req, err := h.sessionEnv(c)
	if err != nil {
		return nil, err
	}
	if s, _ := v1alpha1.EnvSession(env); req.Session != "" && (s == nil || s.ID != req.Session) {
		who := "no session"
		if s != nil {
			who = fmt.Sprintf("the session of %s on host %s (pid %d)", s.User, s.Host, s.PID)
		}
		return nil, errorf(http.StatusConflict, "environment %s is not attached to this session: %s holds it", c.env, who)
	}
	err = h.tenancy.client().Heartbeat(c.r.Context(), env.Namespace, env.Name, h.tenancy.now())
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (h *Handler) detach(c *call) (any, error) {
	env, req, err := h.sessionEnv(c)
	if err != nil {
		return nil, err
	}
	if req.Session == "" {
		return nil, errorf(http.StatusBadRequest, "no session id")
	}
	ttl, err := parseTTL(req.TTL, "ttl")
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, errorf(http.StatusBadRequest, "detach needs a ttl (how long the environment stays without a session)")
	}
	if err := h.tenancy.client().Detach(c.r.Context(), env.Namespace, env.Name, req.Session, ttl, h.tenancy.now()); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
