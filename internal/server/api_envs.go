package server

import (
	"encoding/json"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ApplyRequest is POST /v1/envs's body: `up` through the server.
type ApplyRequest struct {
	// Project is the compose project the CLI loaded, as translate.EncodeProject writes it
	// (compose-go's own JSON leaves out what translate needs).
	Project json.RawMessage `json:"project"`
	// Files are the files translate read on the user's machine, recorded by a
	// translate.Recorder (its Files(): absolute path → contents, plus its manifest), compose
	// files included. The server reads nothing else.
	Files map[string][]byte `json:"files"`
	// TTL is a time.Duration string ("10m"): how long the environment survives without a
	// heartbeat. Empty: DefaultEnvTTL.
	TTL string `json:"ttl,omitempty"`
	// Builds are the images the CLI built for build: services (image by digest).
	Builds map[string]v1alpha1.BuildSpec `json:"builds,omitempty"`
	// PullSecrets are the image pull secrets of the user's registry (`--registry`), by Secret name
	// (ergomake-pull-HOST): each one's .dockerconfigjson, made of the user's docker credentials.
	// The server stores them in the environment's namespace and pods pull with them.
	PullSecrets map[string][]byte `json:"pullSecrets,omitempty"`
	// Session is the attaching session (id, host, pid, start, heartbeat interval). Its user is
	// the token's, whatever the request says.
	Session v1alpha1.Session `json:"session"`
}

// ApplyResponse is POST /v1/envs's answer.
type ApplyResponse struct {
	Env *v1alpha1.ErgomakeEnv `json:"env"`
	// Created: this request created the environment (so its session's teardown deletes it).
	Created  bool     `json:"created"`
	Warnings []string `json:"warnings,omitempty"`
}

// WatchEvent is one line of GET /v1/envs/{name}/watch: the environment as it is now, or the
// news that it was deleted (the last line), or an error that ended the watch (the last line too;
// watch again).
type WatchEvent struct {
	Env     *v1alpha1.ErgomakeEnv `json:"env,omitempty"`
	Deleted bool                  `json:"deleted,omitempty"`
	Error   string                `json:"error,omitempty"`
}

// SessionRequest is POST /v1/envs/{name}/heartbeat's and .../detach's body.
type SessionRequest struct {
	Session string `json:"session"`
	// TTL (detach only) is the environment's TTL from now on, a time.Duration string.
	TTL string `json:"ttl,omitempty"`
	// Forward (heartbeat only, with no Session): the caller forwards into the environment
	// without holding it (`ergomake forward`), which keeps it alive as with a kubeconfig.
	Forward bool `json:"forward,omitempty"`
}
