package operator

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/policy"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The security ceiling (ARCHITECTURE.md decision 13): the operator checks every ErgomakeEnv
// against the ceiling in the cluster's settings (an environment can be applied with kubectl,
// bypassing the CLI's check) and creates nothing for one that exceeds it; under the restricted
// ceiling it hardens the pods (policy.Harden) as Pod Security Admission requires.

// CondReasonExceedsCeiling is the reason of the Degraded condition of an environment that asks for
// more than the cluster's security ceiling allows, and of each service at fault.
const CondReasonExceedsCeiling = "ExceedsPodSecurityCeiling"

// ceilingRefresh is how long a ceiling read from the settings is trusted.
const ceilingRefresh = 15 * time.Second

// settingsKey is the cluster settings' ConfigMap: in opts.SettingsNamespace, else the operator's
// own namespace (POD_NAMESPACE), else the default one.
func settingsKey(opts Options) types.NamespacedName {
	ns := opts.SettingsNamespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		ns = clustersettings.DefaultNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: clustersettings.Name}
}

// CeilingLookup reads the security ceiling from the cluster settings, remembering it for a while.
// Without settings the ceiling is the default, baseline; a nil *CeilingLookup is baseline too.
type CeilingLookup struct {
	Reader client.Reader
	Key    types.NamespacedName
	Clock  clock.PassiveClock

	mu    sync.Mutex
	level policy.Level
	at    time.Time
}

// Level is the ceiling.
func (l *CeilingLookup) Level(ctx context.Context) policy.Level {
	if l == nil {
		return policy.Default
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Clock.Now()
	if !l.at.IsZero() && now.Sub(l.at) < ceilingRefresh && now.Sub(l.at) >= 0 {
		return l.level
	}
	var cm corev1.ConfigMap
	err := l.Reader.Get(ctx, l.Key, &cm)
	switch {
	case err == nil:
		s, serr := clustersettings.FromConfigMap(&cm)
		level, perr := policy.ParseLevel(s.PodSecurity)
		if serr != nil || perr != nil {
			level = policy.Default // a value someone mistyped: the safe default
		}
		l.level = level
	case client.IgnoreNotFound(err) == nil:
		l.level = policy.Default
	case l.level != "":
		return l.level // keep the last answer through an API hiccup
	default:
		return policy.Default
	}
	l.at = now
	return l.level
}

// ceilingError is an environment that exceeds the ceiling: the settings at fault.
type ceilingError struct{ violations []policy.Violation }

func (e *ceilingError) Error() string {
	reasons := make([]string, len(e.violations))
	for i, v := range e.violations {
		reasons[i] = v.Reason()
	}
	return strings.Join(reasons, "; ")
}

// byService is the violations of one service, as one message ("" for none).
func (e *ceilingError) byService(name string) string {
	if e == nil {
		return ""
	}
	var out []string
	for _, v := range e.violations {
		if v.Service == name {
			out = append(out, strings.TrimPrefix(v.Field, "spec.services["+name+"].")+": "+v.Message)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "not created: " + strings.Join(out, "; ") + ` (beyond the cluster's pod security ceiling "` + string(e.violations[0].Ceiling) + `")`
}

// checkCeiling is a violation of the ceiling in env's spec, nil when there is none.
func checkCeiling(env *v1alpha1.ErgomakeEnv, level policy.Level) error {
	if vs := policy.CheckEnv(&env.Spec, level); len(vs) > 0 {
		return &ceilingError{violations: vs}
	}
	return nil
}
