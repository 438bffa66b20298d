package namedns

import (
	"strings"
	"testing"
)

func TestClusterDomainFrom(t *testing.T) {
	for in, want := range map[string]string{
		"search ergomake-system.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n": "cluster.local",
		"nameserver 10.0.0.10\nsearch ops.svc.corp.example. svc.corp.example. corp.example. example.com\n":                   "corp.example",
		"nameserver 1.1.1.1\nsearch example.com\n": "",
		"": "",
	} {
		got, ok := ClusterDomainFrom(strings.NewReader(in))
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}
