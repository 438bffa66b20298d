package server

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNamespace(t *testing.T) {
	for _, tc := range []struct{ user, project, want string }{
		{"alice", "shop", "ergomake-alice-shop"},
		{"bob2", "my-app", "ergomake-bob2-my-app"},
	} {
		if got := Namespace(tc.user, tc.project); got != tc.want {
			t.Errorf("Namespace(%q, %q) = %q, want %q", tc.user, tc.project, got, tc.want)
		}
	}
	// Anything else is sanitized and hashed; readable parts are kept.
	for _, tc := range []struct{ user, project, prefix string }{
		{"Alice", "shop", "ergomake-alice-shop-"},
		{"john.doe@example.com", "shop", "ergomake-john-doe-example-com-shop-"},
		{"a-b", "c", "ergomake-a-b-c-"},
		{"alice", "My_App", "ergomake-alice-my-app-"},
		{"@@", "x", "ergomake-u-x-"},
	} {
		got := Namespace(tc.user, tc.project)
		if !strings.HasPrefix(got, tc.prefix) || len(got) != len(tc.prefix)+hashLen {
			t.Errorf("Namespace(%q, %q) = %q, want %q + %d characters", tc.user, tc.project, got, tc.prefix, hashLen)
		}
	}
}

func TestNamespaceValidAndCollisionSafe(t *testing.T) {
	long := strings.Repeat("x", MaxUserLen)
	users := []string{"alice", "Alice", "ALICE", "a-b", "a", "b-c", "b", "alice@example.com", "alice.example.com",
		"alice_example_com", long, long[:127] + "y", "9lives", "x" + strings.Repeat("-", 60) + "y", "a+b", "a.b"}
	projects := []string{"shop", "c", "b-c", "a-b-c", "my_app", "My-App", "my-app", strings.Repeat("p", 63),
		strings.Repeat("p", 62) + "q", "0", "seed"}
	seen := map[string][2]string{}
	for _, u := range users {
		for _, p := range projects {
			ns := Namespace(u, p)
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				t.Errorf("Namespace(%q, %q) = %q: %v", u, p, ns, errs)
			}
			if !strings.HasPrefix(ns, "ergomake-") {
				t.Errorf("Namespace(%q, %q) = %q lacks the prefix", u, p, ns)
			}
			if prev, dup := seen[ns]; dup {
				t.Errorf("Namespace(%q, %q) = Namespace(%q, %q) = %q", u, p, prev[0], prev[1], ns)
			}
			seen[ns] = [2]string{u, p}
			if again := Namespace(u, p); again != ns {
				t.Errorf("Namespace(%q, %q) not stable: %q then %q", u, p, ns, again)
			}
		}
	}
}

// TestClusterScopedName: the server of the default namespace keeps the names of
// config/server/rbac.yaml; a server installed in another namespace gets names of its own.
func TestClusterScopedName(t *testing.T) {
	for _, tc := range []struct{ base, ns, want string }{
		{EnvRoleName, "ergomake-system", EnvRoleName},
		{EnvRoleName, "", EnvRoleName},
		{EnvRoleName, "bench-srv", "ergomake-server-env-bench-srv"},
		{ServiceName, "ops", "ergomake-server-ops"},
	} {
		if got := ClusterScopedName(tc.base, tc.ns); got != tc.want {
			t.Errorf("ClusterScopedName(%q, %q) = %q, want %q", tc.base, tc.ns, got, tc.want)
		}
	}
}
