package install

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ergomake/ergomake/config"
)

// DNSName names the environment DNS's Deployment, PodDisruptionBudget, ServiceAccount and RBAC.
// It runs the operator's image (`ergomake-operator dns`), apart from the operator, so that an
// operator restart never interrupts name resolution in environments.
const DNSName = "ergomake-dns"

// dnsObjects are the environment DNS's ServiceAccount, ClusterRole and binding, Deployment and
// PodDisruptionBudget, set up for opts (defaults filled in).
func dnsObjects(opts Options) ([]*unstructured.Unstructured, error) {
	out, err := decodeFiles(config.DNS, "dns/serviceaccount.yaml", "dns/clusterrole.yaml",
		"dns/clusterrolebinding.yaml", "dns/deployment.yaml", "dns/pdb.yaml")
	if err != nil {
		return nil, err
	}
	for _, u := range out {
		if u.GetKind() != "Deployment" {
			continue
		}
		if err := setContainer(u, "dns", func(c map[string]any) { c["image"] = opts.Image }); err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if err := setRevision(u, opts.Revision); err != nil { // it runs the operator's image
			return nil, err
		}
	}
	return out, nil
}
