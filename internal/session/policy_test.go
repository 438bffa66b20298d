package session

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/translate"
)

// TestCheckCeiling: the project is checked against the ceiling of the cluster's settings
// (baseline without them); each setting that exceeds it is one line naming file:line, service and
// key; the error says nothing was applied.
func TestCheckCeiling(t *testing.T) {
	logrus.SetOutput(io.Discard)
	dir := t.TempDir()
	yaml := "services:\n  web:\n    image: nginx\n    privileged: true\n    cap_add: [CHOWN]\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := compose.Load(ctx, compose.Options{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	res, err := translate.Translate(p, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	for _, tc := range []struct {
		ceiling string // "": no settings
		notices []string
		err     string
	}{
		{ceiling: "", notices: []string{`notice ` + file + `:4: service "web": privileged: a privileged container exceeds the cluster's pod security ceiling "baseline"; a cluster admin can allow it with ` + "`ergomake install --pod-security privileged`"},
			err: `the project exceeds the cluster's pod security ceiling "baseline": a setting exceeds it (above); nothing was applied`},
		{ceiling: "restricted", notices: []string{
			`notice ` + file + `:4: service "web": privileged: a privileged container exceeds the cluster's pod security ceiling "restricted"; a cluster admin can allow it with ` + "`ergomake install --pod-security privileged`",
			`notice ` + file + `:5: service "web": cap_add: capability CHOWN exceeds the cluster's pod security ceiling "restricted"; a cluster admin can allow it with ` + "`ergomake install --pod-security baseline`"},
			err: `the project exceeds the cluster's pod security ceiling "restricted": 2 settings exceed it (above); nothing was applied`},
		{ceiling: "privileged"},
	} {
		cs := fake.NewClientset()
		if tc.ceiling != "" {
			cm := clustersettings.Settings{PodSecurity: tc.ceiling}.ConfigMap()
			if _, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		cs.ClearActions()
		rec := &recorder{}
		s := newSession(Options{Client: &kube.Client{Kube: cs}, Reporter: rec, Project: p}, "ergomake-x", "x", "x")
		err := s.checkCeiling(ctx, res)
		if tc.err == "" {
			if err != nil || len(rec.lines) != 0 {
				t.Errorf("%s: %v, said %q", tc.ceiling, err, rec.lines)
			}
			continue
		}
		if err == nil || err.Error() != tc.err || !errors.Is(err, ErrCeiling) {
			t.Errorf("%s: error %v, want %s", tc.ceiling, err, tc.err)
		}
		if strings.Join(rec.lines, "\n") != strings.Join(tc.notices, "\n") {
			t.Errorf("%s: said\n%s\nwant\n%s", tc.ceiling, strings.Join(rec.lines, "\n"), strings.Join(tc.notices, "\n"))
		}
		if acts := cs.Actions(); len(acts) != 1 || acts[0].GetVerb() != "get" {
			t.Errorf("%s: the check did more than read the settings: %v", tc.ceiling, acts)
		}
	}
}
