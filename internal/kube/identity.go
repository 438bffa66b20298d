package kube

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// WhoAmI asks the API server who the client's credentials are (a SelfSubjectReview,
// authentication.k8s.io/v1, served since Kubernetes 1.28). The answer is what the API server
// authenticated, not what the kubeconfig says.
func (c *Client) WhoAmI(ctx context.Context) (*v1alpha1.Creator, error) {
	r, err := c.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s does not serve SelfSubjectReview (authentication.k8s.io/v1, Kubernetes 1.28 and later): cannot tell who you are", c)
		}
		return nil, fmt.Errorf("asking %s who you are (SelfSubjectReview): %w", c, c.Explain(err))
	}
	u := r.Status.UserInfo
	if u.Username == "" {
		return nil, fmt.Errorf("%s did not say who you are (SelfSubjectReview answered no username)", c)
	}
	return &v1alpha1.Creator{Username: u.Username, Groups: u.Groups}, nil
}
