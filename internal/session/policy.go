package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/policy"
	"github.com/ergomake/ergomake/internal/translate"
)

// ErrCeiling is the error of a project that exceeds the cluster's security ceiling: each setting
// at fault was told on its own line, and nothing was applied.
var ErrCeiling = errors.New("the project exceeds the cluster's pod security ceiling")

// checkCeiling refuses, before anything is applied, a project that asks for more than the
// cluster's security ceiling allows (ARCHITECTURE.md decision 13): one line per setting, naming
// file:line, service and compose key, and what the cluster admin can change. The ceiling comes
// from the cluster's settings; a cluster without them has the default, baseline.
func (s *session) checkCeiling(ctx context.Context, res *translate.Result) error {
	name, err := s.be.podSecurity(ctx)
	if err != nil && !errors.Is(err, clustersettings.ErrNotInstalled) && ctx.Err() == nil {
		s.rep.Warnf("cannot read the cluster's security ceiling, checking against %s: %v", name, err)
	}
	level, perr := policy.ParseLevel(name)
	if perr != nil {
		level = policy.Default
	}
	violations := policy.Check(s.opts.Project, &res.Env.Spec, level)
	if len(violations) == 0 {
		return nil
	}
	for _, v := range violations {
		s.rep.Noticef("%s", v)
	}
	what := "a setting exceeds"
	if len(violations) > 1 {
		what = fmt.Sprintf("%d settings exceed", len(violations))
	}
	return fmt.Errorf("%w %q: %s it (above); nothing was applied", ErrCeiling, level, what)
}
