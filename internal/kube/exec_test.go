package kube

import "testing"

func TestStartFailure(t *testing.T) {
	tests := []struct {
		msg, want string
		ok        bool
	}{
		{
			// containerd 2, as the e2e cluster's kubelet reports it.
			msg:  `Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "270a": OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`,
			want: `unable to start container process: exec: "nope": executable file not found in $PATH`, ok: true,
		},
		{
			msg:  `Internal error occurred: error executing command in container: container is not running`,
			want: "container is not running", ok: true,
		},
		{msg: "error dialing backend: dial tcp 10.0.0.1:10250: connect: connection refused"},
	}
	for _, tt := range tests {
		got, ok := startFailure(tt.msg)
		if got != tt.want || ok != tt.ok {
			t.Errorf("startFailure(%q) = %q, %v; want %q, %v", tt.msg, got, ok, tt.want, tt.ok)
		}
	}
}
