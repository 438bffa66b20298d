package operator

import (
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestMetricsOnLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"0", true}, {"127.0.0.1:8080", true}, {"[::1]:8080", true}, {"localhost:8080", true}, {"127.0.0.2:9000", true},
		{":8080", false}, {"0.0.0.0:8080", false}, {"10.0.0.1:8080", false}, {"[::]:8080", false}, {"8080", false},
	} {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
	_, err := NewManager(Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}, MetricsAddr: ":8080"})
	if err == nil || !strings.Contains(err.Error(), "not on loopback") {
		t.Errorf("NewManager with metrics on every interface: %v", err)
	}
}
