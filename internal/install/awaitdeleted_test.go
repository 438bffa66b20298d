package install

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestAwaitDeleted: install right after an uninstall waits for a Deployment still being deleted
// (foreground deletion waits for its pods) before applying, saying so; one that is there and not
// being deleted, or not there, is not waited for.
func TestAwaitDeleted(t *testing.T) {
	scheme, err := newScheme() // install's own: a type it reads must be in it
	if err != nil {
		t.Fatal(err)
	}
	deleting := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "ergomake-server", Namespace: DefaultNamespace, Finalizers: []string{"foregroundDeletion"}}}
	staying := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "ergomake-operator", Namespace: DefaultNamespace}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(deleting, staying).Build()
	ctx := context.Background()
	if err := c.Delete(ctx, deleting); err != nil {
		t.Fatal(err)
	}
	obj := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
		u.SetNamespace(DefaultNamespace)
		u.SetName(name)
		return u
	}
	var out bytes.Buffer
	opts := Options{Namespace: DefaultNamespace, Timeout: time.Minute, Out: &out}
	for _, name := range []string{"ergomake-operator", "absent"} {
		if err := awaitDeleted(ctx, c, opts, obj(name)); err != nil || out.Len() != 0 {
			t.Fatalf("%s: %v, said %q", name, err, out.String())
		}
	}

	// The garbage collector finishes the deletion a moment later.
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(700 * time.Millisecond)
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(deleting), &d); err != nil {
			t.Error(err)
			return
		}
		d.Finalizers = nil
		if err := c.Update(ctx, &d); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	if err := awaitDeleted(ctx, c, opts, obj("ergomake-server")); err != nil {
		t.Fatal(err)
	}
	<-released
	if time.Since(start) < 500*time.Millisecond {
		t.Errorf("returned after %s, before the Deployment was gone", time.Since(start))
	}
	if !strings.Contains(out.String(), "waiting for the previous Deployment ergomake-system/ergomake-server to finish deleting") {
		t.Errorf("said %q", out.String())
	}

	// Still there after the timeout: an error naming it.
	stuck := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: DefaultNamespace, Finalizers: []string{"example.com/never"}}}
	if err := c.Create(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	opts.Timeout = time.Second
	if err := awaitDeleted(ctx, c, opts, obj("stuck")); err == nil || !strings.Contains(err.Error(), "Deployment ergomake-system/stuck is still being deleted after 1s") {
		t.Errorf("stuck: %v", err)
	}
}
