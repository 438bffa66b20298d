package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestCheckDownAllowed: `down` of an environment another identity created needs --force (exit
// 3); the creator's own, one that records no creator, and --force go ahead. Who "you" are is the
// API server's SelfSubjectReview answer (a fake clientset: the decision is ours).
func TestCheckDownAllowed(t *testing.T) {
	client := func(user string) *kube.Client {
		cs := fake.NewClientset()
		cs.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &authnv1.SelfSubjectReview{Status: authnv1.SelfSubjectReviewStatus{UserInfo: authnv1.UserInfo{Username: user}}}, nil
		})
		return &kube.Client{Kube: cs, ClusterName: "local"}
	}
	env := func(creator string) *v1alpha1.ErgomakeEnv {
		e := &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Namespace: "ergomake-shop", Name: "shop", Annotations: map[string]string{}}}
		if creator != "" {
			e.Annotations[v1alpha1.AnnotationCreator] = (&v1alpha1.Creator{Username: creator}).Annotation()
		}
		return e
	}
	ctx := context.Background()
	if err := checkDownAllowed(ctx, client("alice"), env("alice"), false); err != nil {
		t.Errorf("the creator's own: %v", err)
	}
	if err := checkDownAllowed(ctx, client("alice"), env(""), false); err != nil {
		t.Errorf("no creator recorded: %v", err)
	}
	if err := checkDownAllowed(ctx, client("alice"), env("bob"), true); err != nil {
		t.Errorf("--force: %v", err)
	}
	err := checkDownAllowed(ctx, client("alice"), env("bob"), false)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitInUse ||
		!strings.Contains(err.Error(), "environment ergomake-shop/shop was created by bob, not by you (alice): --force removes it anyway") {
		t.Errorf("another's: %v", err)
	}
	// Who we are cannot be told: refused too, saying why.
	err = checkDownAllowed(ctx, client(""), env("bob"), false)
	if !errors.As(err, &ee) || ee.Code != ExitInUse || !strings.Contains(err.Error(), "did not say who you are") {
		t.Errorf("unknown identity: %v", err)
	}
}
