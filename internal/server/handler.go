package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ergomake/ergomake/internal/kube"
)

// APIVersion is the version prefix of every API path.
const APIVersion = "v1"

// DefaultMaxBody bounds a request body unless a route says otherwise.
const DefaultMaxBody = 1 << 20

// Authenticator finds who a bearer token belongs to (TokenStore).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// Handler serves the API. Build it with NewHandler.
type Handler struct {
	auth        Authenticator
	tenancy     *Tenancy
	limiter     *RateLimiter
	dialLimiter *RateLimiter
	maxBody     int64
	// maxApply bounds POST /v1/envs's body (the project and its files).
	maxApply int64
	audit    *slog.Logger
	version  string
	mux      *http.ServeMux
	streams  *streams // dial and logs (dial.go, logs.go)
	// execIn runs a command in a pod (nil: with the tenancy's credentials, kube.Client.Exec).
	execIn func(ctx context.Context, o kube.ExecOptions) (int, error)
	drain  *drainer // requests in flight, graceful shutdown (drain.go)
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	Auth    Authenticator
	Tenancy *Tenancy
	// Limiter limits requests per token (nil: no limit).
	Limiter *RateLimiter
	// DialLimiter, when set, limits the dial routes (one request per forwarded connection, so
	// many more than the other routes take) in a budget of their own; nil: Limiter.
	DialLimiter *RateLimiter
	// MaxBody bounds request bodies (0: DefaultMaxBody).
	MaxBody int64
	// MaxApplyBody bounds POST /v1/envs's body (0: DefaultMaxApplyBody).
	MaxApplyBody int64
	// Audit receives one line per request that reached the API: user, action, environment,
	// status (never a token).
	Audit *slog.Logger
	// Version is the server's version, for GET /v1/version.
	Version string
	// BuilderDial connects to the builder's BuildKit port for GET /v1/builder/dial (nil: the
	// route answers 503). PodWait bounds how long a dial waits for a ready pod (0:
	// DefaultPodWait).
	BuilderDial func(ctx context.Context) (net.Conn, error)
	PodWait     time.Duration
	// Exec runs a command in a pod for GET /v1/envs/{name}/exec (nil: kube.Client.Exec with the
	// Tenancy's credentials; tests give their own).
	Exec func(ctx context.Context, o kube.ExecOptions) (int, error)
}

// NewHandler returns the API's handler.
func NewHandler(o HandlerOptions) *Handler {
	h := &Handler{auth: o.Auth, tenancy: o.Tenancy, limiter: o.Limiter, dialLimiter: o.DialLimiter, maxBody: o.MaxBody, audit: o.Audit, version: o.Version, execIn: o.Exec, drain: newDrainer()}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	h.maxApply = o.MaxApplyBody
	if h.maxApply <= 0 {
		h.maxApply = DefaultMaxApplyBody
	}
	if h.audit == nil {
		h.audit = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", h.readyz) // 503 once the server shuts down
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": h.version, "api": APIVersion})
	})
	mux.Handle("GET /v1/whoami", h.action("whoami", h.whoami))
	mux.Handle("GET /v1/envs", h.action("envs.list", h.listEnvs))
	mux.Handle("DELETE /v1/envs/{name}", h.action("envs.delete", h.deleteEnv))
	mux.Handle("GET /v1/builder", h.action("builder.info", h.builderInfo))
	// up and down through the server (envs.go)
	mux.Handle("POST /v1/envs", h.actionLimit("envs.apply", h.maxApply, h.applyEnv))
	mux.Handle("GET /v1/envs/{name}", h.action("envs.get", h.getEnv))
	mux.Handle("GET /v1/envs/{name}/watch", h.action("envs.watch", h.watchEnv))
	mux.Handle("POST /v1/envs/{name}/heartbeat", h.action("envs.heartbeat", h.heartbeat))
	mux.Handle("POST /v1/envs/{name}/detach", h.action("envs.detach", h.detach))
	// streams: dial, builder dial, logs (dial.go, logs.go)
	h.streams = newStreams(o.Tenancy, o.BuilderDial, o.PodWait)
	h.streamRoutes(mux)
	// restart and exec (restart.go, exec.go)
	mux.Handle("POST /v1/envs/{name}/restart", h.action("envs.restart", h.restart))
	mux.Handle("GET /v1/envs/{name}/exec", h.action("envs.exec", h.exec))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s (this server speaks /%s: see docs/server-api.md)", r.Method, r.URL.Path, APIVersion))
	})
	h.mux = mux
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// call is one authenticated request.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	who  Identity
	env  string // the environment acted on, for the audit line
	note string // what went wrong, for the audit line
}

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// limiterFor is the rate limiter of the action name: the dial routes (".dial") have their own
// budget when one is configured.
func (h *Handler) limiterFor(name string) *RateLimiter {
	if h.dialLimiter != nil && strings.HasSuffix(name, ".dial") {
		return h.dialLimiter
	}
	return h.limiter
}

// action wraps an authenticated endpoint: body size limit, bearer token, rate limit per token,
// then fn, then one audit line.
func (h *Handler) action(name string, fn func(*call) (any, error)) http.Handler {
	return h.actionLimit(name, h.maxBody, fn)
}

// actionLimit is action with its own body size limit.
func (h *Handler) actionLimit(name string, maxBody int64, fn func(*call) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer h.drain.start()() // a shutdown waits for it (upgraded connections too)
		rec := &statusRecorder{ResponseWriter: w}
		c := &call{w: rec, r: r}
		defer func() {
			user := c.who.User
			if user == "" {
				user = "-"
			}
			env := c.env
			if env == "" {
				env = "-"
			}
			attrs := []any{"user", user, "action", name, "env", env, "status", rec.status(), "remote", remoteHost(r), "ms", time.Since(start).Milliseconds()}
			if c.note != "" {
				attrs = append(attrs, "error", c.note)
			}
			h.audit.Info("audit", attrs...)
		}()

		if r.ContentLength > maxBody {
			c.note = "body too large"
			writeError(rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, maxBody))
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, maxBody)
		if headerHas(r.Header, "Connection", "upgrade") {
			// A client may send the upgraded connection's first bytes right after its request
			// (Client.DialFirst): an answer other than 101 closes the connection, so that they
			// are never read as a request.
			rec.Header().Set("Connection", "close")
		}

		token, ok := bearer(r)
		if !ok {
			c.note = ErrNoToken.Error()
			writeError(rec, http.StatusUnauthorized, ErrNoToken.Error())
			return
		}
		who, err := h.auth.Authenticate(r.Context(), token)
		if err != nil {
			switch {
			case errors.Is(err, ErrNoToken), errors.Is(err, ErrUnknownToken), errors.Is(err, ErrRevoked), errors.Is(err, ErrExpired):
				c.note = err.Error()
				rec.Header().Set("WWW-Authenticate", `Bearer realm="ergomake"`)
				writeError(rec, http.StatusUnauthorized, err.Error())
			default:
				c.note = err.Error()
				writeError(rec, http.StatusServiceUnavailable, "the server cannot check tokens right now: try again")
			}
			return
		}
		c.who = who
		if lim := h.limiterFor(name); lim != nil {
			if ok, retry := lim.Allow(who.TokenID); !ok {
				secs := int(math.Ceil(retry.Seconds()))
				rec.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
				c.note = "rate limited"
				writeError(rec, http.StatusTooManyRequests, fmt.Sprintf("too many requests: try again in %ds", max(secs, 1)))
				return
			}
		}
		out, err := fn(c)
		if err != nil {
			var ae *apiError
			var qe *QuotaError
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &ae):
				c.note = ae.msg
				writeError(rec, ae.status, ae.msg)
			case errors.As(err, &mbe):
				c.note = "body too large"
				writeError(rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", mbe.Limit))
			case errors.Is(err, ErrNotFound):
				c.note = err.Error()
				writeError(rec, http.StatusNotFound, fmt.Sprintf("you have no environment %q", c.env))
			case errors.As(err, &qe):
				c.note = err.Error()
				writeError(rec, http.StatusForbidden, err.Error())
			default:
				c.note = err.Error()
				writeError(rec, http.StatusInternalServerError, err.Error())
			}
			return
		}
		if _, ok := out.(streamed); ok {
			return // the endpoint answered itself (an upgraded connection, a stream)
		}
		writeJSON(rec, http.StatusOK, out)
	})
}

// WhoAmI is GET /v1/whoami's answer.
type WhoAmI struct {
	User    string     `json:"user"`
	TokenID string     `json:"tokenID"`
	Expires *time.Time `json:"expires,omitempty"`
}

func (h *Handler) whoami(c *call) (any, error) {
	return WhoAmI{User: c.who.User, TokenID: c.who.TokenID, Expires: c.who.Expires}, nil
}

// EnvList is GET /v1/envs's answer.
type EnvList struct {
	Environments []Env `json:"environments"`
}

func (h *Handler) listEnvs(c *call) (any, error) {
	envs, err := h.tenancy.ListEnvs(c.r.Context(), c.who.User)
	if err != nil {
		return nil, err
	}
	return EnvList{Environments: envs}, nil
}

// Deleted is DELETE /v1/envs/{name}'s answer.
type Deleted struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func (h *Handler) deleteEnv(c *call) (any, error) {
	name := c.r.PathValue("name")
	c.env = name
	if name == "" || len(name) > 253 {
		return nil, errorf(http.StatusBadRequest, "bad environment name %q", name)
	}
	ns, err := h.tenancy.DeleteEnv(c.r.Context(), c.who.User, name)
	if err != nil {
		return nil, err
	}
	if c.r.URL.Query().Get("wait") == "1" {
		// ?wait=1: answer once the namespace, and everything in it, is gone.
		longRequest(c.w)
		if err := h.tenancy.client().WaitNamespaceGone(c.r.Context(), ns, nil); err != nil {
			return nil, err
		}
	}
	return Deleted{Name: name, Namespace: ns}, nil
}

// ErrorBody is the body of every error answer: one line a CLI shows as it is.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the connection (deadlines of streaming endpoints).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
