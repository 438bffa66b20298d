package translate

import (
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// build gives a service that has build: its image: the one Options.Builds names for it (what the
// builder planned, or built: then by digest), else DefaultImage. The build: keys are the
// builder's (internal/imagebuild): its plan warns about those it does not honour.
func (t *translator) build(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	b := t.opts.Builds[s.Name]
	if b.Image == "" {
		b.Image = DefaultImage(t.p.Name, s)
	}
	out.Build = &b
	out.Image = ImageRef(b)

}

// DefaultImage is the name of a built service's image when the builder has not planned it (a
// translation without a registry): the service's image: when it has one, else
// <project>-<service> as docker compose names it.
func DefaultImage(project string, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return project + "-" + s.Name
}

// ImageRef is the reference pods run for b: its image by digest once built
// (registry/repository@sha256:...), else its name.
func ImageRef(b v1alpha1.BuildSpec) string {
	if b.Digest == "" {
		return b.Image
	}
	return imageRepository(b.Image) + "@" + b.Digest
}

// imageRepository is ref without its tag and digest ("127.0.0.1:5100/p/web:abc" →
// "127.0.0.1:5100/p/web"); a registry port is not a tag.
func imageRepository(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}
