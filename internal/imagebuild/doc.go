// Package imagebuild builds the images of compose services that have
// build: with BuildKit running in the cluster (ARCHITECTURE.md decision
// 12), through BuildKit's Go client over a tunnel of internal/forward to
// buildkitd's loopback port in its pod. No Docker engine is needed on the
// user's machine.
//
// Two steps:
//
//	plans, err := imagebuild.Plan(project, services, reg, imagebuild.PlanOptions{Platforms: nodePlatforms})
//	results, err := imagebuild.Build(ctx, plans, imagebuild.Options{Dial: dial, Registry: reg, Out: os.Stderr, TTY: isTerminal})
//
// Plan needs no cluster (ergomake render uses it): it validates every
// build (context folder, Dockerfile or dockerfile_inline and its syntax,
// target stage, secrets, additional contexts; a git or URL context is an
// error) with *compose.Error values naming file, service and key; it
// computes each service's content key (the context after .dockerignore or
// <Dockerfile>.dockerignore, the Dockerfile, args, target, platforms,
// labels, additional contexts with the keys of the services they name,
// ...) and where the image goes:
// PushRef/PullRef = <Registry.Push|Pull>/<project>/<service>:<key>. Keys
// that are ignored come back as Planned.Warnings. Plans come in build
// order (a service after those its additional_contexts "service:NAME"
// name; Plan adds those services).
//
// Build connects to buildkitd with Options.Dial (for the in-cluster
// builder: forward.PodDialer.DialPod to the pod ReadyPod finds for
// clustersettings' BuilderSelector, port BuilderPort). An unreachable
// builder is an error wrapping ErrBuilderUnreachable. Unless Force or
// NoCache, it first asks the builder (the gateway's image resolution: the
// builder's registry configuration and the user's docker credentials, so
// any registry works) which keys' images exist: those services are
// reused, not built. The others are built in parallel (a service after
// those it names), with the Dockerfile frontend (dockerfile.v0); the
// context is sent by the session's file sync from the user's folder, so
// files .dockerignore excludes never leave the machine; build secrets and
// ssh are served through the session from this machine; the image is
// pushed by the image exporter (Registry.Insecure: over plain HTTP) as
// PushRef and the plan's Names. Every build shows in one progress display
// (progressui: the live view when Options.TTY, plain lines otherwise), each
// step prefixed with its service, followed by the warnings (a context
// larger than Options.LargeContext, naming its biggest paths). Results
// carry the image by digest as the nodes pull it (Result.Image =
// <PullRef repository>@sha256:...), whether it was reused and the context
// bytes sent. A failed build is a *BuildError with the failing step and
// its last lines of output; the other builds are cancelled. When ctx ends
// the builds are cancelled on the builder and ctx's cause is returned.
//
// Compose build keys and what they become: context (a folder; git/URL: an
// error), dockerfile, dockerfile_inline, target, args (map or list form,
// interpolated by compose-go; an arg without value is taken from the
// environment or left out), labels, tags and image: (pushed as further
// names when they are in the registry, else a warning), no_cache,
// no_cache_filter, pull, network (none, host; others: warning),
// shm_size, extra_hosts, ulimits, platforms (default
// PlanOptions.Platforms: the nodes'), cache_from / cache_to (type=...
// entries or an image reference; type=local is an error: the builder is
// not on this machine), additional_contexts (folders, docker-image://,
// URLs, service:NAME), secrets (file or environment) and ssh (agent or key
// files). entitlements, privileged, isolation, provenance and sbom are
// warned about and ignored.
package imagebuild
