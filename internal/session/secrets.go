package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Annotations of a service's environment Secret (env-<service>), read back by the next `up`.
const (
	// annotationContentHash is a hash of the Secret's data. It is only on the Secret, which
	// holds the values anyway; never in the ErgomakeEnv, whose readers must learn nothing of
	// them.
	annotationContentHash = "ergomake.dev/content-hash"
	// annotationVersion is the opaque token the spec's envSecretVersion carries.
	annotationVersion = v1alpha1.AnnotationEnvSecretVersion
)

// versionEnvSecrets gives each service with an environment Secret its EnvSecretVersion: the
// version the Secret already has in the cluster when its values are unchanged, a new random
// token when they changed (or it is new). The version is a pod template annotation, so changed
// values restart the service's pods, as compose recreates a container whose environment changed,
// and unchanged ones restart nothing; being random, it tells a reader of the ErgomakeEnv nothing
// of the values (a hash of them would let a short value be guessed).
func (s *session) versionEnvSecrets(ctx context.Context, res *translate.Result) error {
	get := func(name string) (*corev1.Secret, error) {
		sec, err := s.client.Kube.CoreV1().Secrets(s.ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("reading Secret %s/%s: %w", s.ns, name, s.client.Explain(err))
		}
		return sec, nil
	}
	return setEnvSecretVersions(res, get, newToken)
}

// setEnvSecretVersions is versionEnvSecrets with the cluster's Secrets read by get (nil, nil:
// there is none) and new tokens made by token.
func setEnvSecretVersions(res *translate.Result, get func(name string) (*corev1.Secret, error), token func() string) error {
	byName := map[string]*corev1.Secret{}
	for _, sec := range res.Secrets {
		byName[sec.Name] = sec
	}
	for i := range res.Env.Spec.Services {
		svc := &res.Env.Spec.Services[i]
		sec := byName[svc.EnvSecret]
		if sec == nil {
			continue
		}
		sum := contentHash(sec.Data)
		old, err := get(sec.Name)
		if err != nil {
			return err
		}
		version := ""
		if old != nil && old.Annotations[annotationContentHash] == sum {
			version = old.Annotations[annotationVersion]
		}
		if version == "" {
			version = token()
		}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		sec.Annotations[annotationContentHash] = sum
		sec.Annotations[annotationVersion] = version
		svc.EnvSecretVersion = version
	}
	return nil
}

// contentHash is a hash of every key and value of data.
func contentHash(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func newToken() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
