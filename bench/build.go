package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ergomake/ergomake/internal/kube"
)

// buildCompose is the build group's project: two small services built from the test image, each
// step made new by a per-project value so that the first build is cold.
const buildCompose = `name: %[1]s
services:
  web:
    build:
      context: ./web
      args:
        NONCE: %[1]s
    stop_grace_period: 1s
    ports: ["8080"]
  api:
    build:
      context: .
      dockerfile_inline: |
        FROM %[2]s
        ARG NONCE=%[1]s
        RUN echo "$$NONCE" > /nonce
        ENV SERVICE=api PORTS=9000
    stop_grace_period: 1s
    ports: ["9000"]
`

const buildWebDockerfile = `FROM %s
ARG NONCE
COPY . /srv/web
RUN echo "$NONCE" > /nonce
ENV SERVICE=web PORTS=8080
`

// uploadDockerfile reads the whole context without making a layer of it: the time is the upload's
// (and the builder's), not an export's.
const uploadDockerfile = `FROM %s
RUN --mount=type=bind,target=/ctx wc -c /ctx/blob
`

// builds is the build group: a cold small build (the first `up -d` of a project of two built
// services, every step new), the unchanged re-up (its second `up -d` after `down`, which must
// reuse the images) as a fraction of the first, and the context upload rate of `ergomake build`
// with a fresh 64 MiB file in the context.
func (b *bench) builds(ctx context.Context, res *results) error {
	cold := res.row("build: cold small build, first up -d (2 services)", "s", 2, target{})
	reup := res.row("build: unchanged re-up -d / first up -d", "×", 2, target{ergoAtMost, 0.3, "≤ 0.3× first up"})
	plain := res.row("build: up -d of the built images as image: (2 services)", "s", 2, target{})
	reuse := res.row("build: unchanged re-up -d / up -d of the built images as image:", "×", 2, target{ergoAtMost, 1.1, "≤ 1.1×"})
	buildOnly := res.row("build: unchanged ergomake build / cold ergomake build", "×", 2, target{})
	upload := res.row("build: context upload (64 MiB, ergomake build)", "MiB/s", 1, target{})
	for _, r := range []*row{cold, reup, plain, reuse, buildOnly, upload} {
		r.na[pKube], r.na[pDirect] = true, true
	}
	for run := range b.c.runs {
		p := &project{name: "bench-build-" + randSuffix()}
		p.ns = "ergomake-" + p.name
		p.dir = filepath.Join(b.tmp, p.name)
		files := map[string]string{
			"compose.yaml":   fmt.Sprintf(buildCompose, p.name, testImage),
			"web/Dockerfile": fmt.Sprintf(buildWebDockerfile, testImage),
			"web/index.html": "<h1>bench</h1>\n",
		}
		if err := writeTree(p.dir, files); err != nil {
			return err
		}
		first, err := b.upDetached(ctx, p)
		if err != nil {
			return fmt.Errorf("build, first up: %w", err)
		}
		// the same services with the images just built given as image: (no build section)
		img, err := b.builtAsImages(ctx, p)
		if err != nil {
			return err
		}
		if err := b.ergomake(ctx, p.dir, 3*time.Minute, "down"); err != nil {
			return err
		}
		// the unchanged re-up and the up of the built images, each right after a down, in an order
		// that alternates run by run
		var second, asImage float64
		for i := range 2 {
			if (i+run)%2 == 0 {
				second, err = b.upDetached(ctx, p)
				if err != nil {
					return fmt.Errorf("build, second up: %w", err)
				}
				err = b.ergomake(ctx, p.dir, 3*time.Minute, "down")
			} else {
				asImage, err = b.upDetached(ctx, img)
				if err != nil {
					return fmt.Errorf("build, up of the built images as image:: %w", err)
				}
				err = b.ergomake(ctx, img.dir, 3*time.Minute, "down")
			}
			if err != nil {
				return err
			}
		}
		b.logf("build, run %d/%d: first up %.2fs, unchanged re-up %.2fs, up of the built images as image: %.2fs", run+1, b.c.runs, first, second, asImage)
		cold.add(pErgo, first)
		reup.add(pErgo, second/first)
		plain.add(pErgo, asImage)
		reuse.add(pErgo, second/asImage)

		// the build step alone: `ergomake build` of another such project, cold, then unchanged
		q := filepath.Join(b.tmp, p.name+"-build")
		name := filepath.Base(q)
		if err := writeTree(q, map[string]string{
			"compose.yaml":   fmt.Sprintf(buildCompose, name, testImage),
			"web/Dockerfile": fmt.Sprintf(buildWebDockerfile, testImage),
			"web/index.html": "<h1>bench</h1>\n",
		}); err != nil {
			return err
		}
		var took [2]float64
		for i := range took {
			start := time.Now()
			if err := b.ergomake(ctx, q, 10*time.Minute, "build"); err != nil {
				return err
			}
			took[i] = time.Since(start).Seconds()
		}
		b.logf("build, run %d/%d: ergomake build cold %.2fs, unchanged %.2fs", run+1, b.c.runs, took[0], took[1])
		buildOnly.add(pErgo, took[1]/took[0])

		mibs, err := b.uploadRate(ctx, p.name+"-upload", 64<<20)
		if err != nil {
			return err
		}
		b.logf("build, run %d/%d: context upload %.1f MiB/s", run+1, b.c.runs, mibs)
		upload.add(pErgo, mibs)
	}
	res.notef("build: first up -d = `ergomake up -d` of two services built FROM the test image (COPY, ARG, RUN with a value new to the builder), from exec until it exits with every service ready; unchanged re-up = the same after `ergomake down` (images reused, not built: what remains is up's own work, namespace, pods, containers starting, which a small build does not dwarf); up of the built images as image: = `ergomake up -d` of the same two services with the images the first up built given as image: (by digest, no build section), after a down like the re-up, the two in alternating order: the re-up's cost beyond it is the reuse check (the builder's tunnel and one registry lookup per image); unchanged ergomake build = `ergomake build` of another such project, cold then again unchanged (the build step alone, which reuse cuts); context upload = bytes of context sent (`ergomake build -o json`) / wall time of `ergomake build` of a service whose context is a fresh random 64 MiB file read by a RUN --mount=type=bind step")
	return nil
}

// builtAsImages writes the project of p with each service's built image (from its ErgomakeEnv:
// the image by digest its pods run) given as image:, no build section; same ports, same stop
// grace period.
func (b *bench) builtAsImages(ctx context.Context, p *project) (*project, error) {
	kc, err := kube.New(kube.Options{Kubeconfig: b.c.kubeconfig})
	if err != nil {
		return nil, err
	}
	env, err := kc.GetEnv(ctx, p.ns, kube.EnvName(p.name))
	if err != nil {
		return nil, fmt.Errorf("reading the environment of %s: %w", p.name, err)
	}
	images := map[string]string{}
	for _, s := range env.Spec.Services {
		images[s.ServiceName] = s.Image
	}
	q := &project{name: p.name + "-img"}
	q.ns, q.dir = "ergomake-"+q.name, filepath.Join(b.tmp, q.name)
	compose, err := imageCompose(q.name, images)
	if err != nil {
		return nil, err
	}
	return q, writeTree(q.dir, map[string]string{"compose.yaml": compose})
}

// imageCompose is the build group's project (buildCompose) with the images of images (service →
// reference) instead of its build sections.
func imageCompose(name string, images map[string]string) (string, error) {
	ports := map[string]int{"web": 8080, "api": 9000}
	var sb strings.Builder
	fmt.Fprintf(&sb, "name: %s\nservices:\n", name)
	for _, svc := range []string{"web", "api"} {
		img := images[svc]
		if img == "" {
			return "", fmt.Errorf("no built image of service %s (have %v)", svc, images)
		}
		fmt.Fprintf(&sb, "  %s:\n    image: %s\n    stop_grace_period: 1s\n    ports: [\"%d\"]\n", svc, img, ports[svc])
	}
	return sb.String(), nil
}

// upDetached runs `ergomake up -d` in p and returns its seconds until it exits successfully.
func (b *bench) upDetached(ctx context.Context, p *project) (float64, error) {
	start := time.Now()
	if err := b.ergomake(ctx, p.dir, 10*time.Minute, "up", "-d", "--wait-timeout", "8m"); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_ = deleteNamespaceWait(ctx, b.cs, p.ns)
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// uploadRate builds a service whose context is a fresh random file of size bytes and returns the
// context bytes sent per second of `ergomake build`.
func (b *bench) uploadRate(ctx context.Context, name string, size int) (float64, error) {
	dir := filepath.Join(b.tmp, name)
	blob := make([]byte, size)
	if _, err := rand.Read(blob); err != nil {
		return 0, err
	}
	if err := writeTree(dir, map[string]string{
		"compose.yaml": fmt.Sprintf("name: %s\nservices:\n  blob:\n    build: .\n", name),
		"Dockerfile":   fmt.Sprintf(uploadDockerfile, testImage),
		"blob":         string(blob),
	}); err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := b.ergomakeOutput(ctx, dir, 10*time.Minute, "build", "-o", "json")
	if err != nil {
		return 0, err
	}
	took := time.Since(start).Seconds()
	var results []struct {
		ContextBytes int64 `json:"contextBytes"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != 1 {
		return 0, fmt.Errorf("ergomake build -o json: %v: %s", err, out)
	}
	if results[0].ContextBytes < int64(size) {
		return 0, fmt.Errorf("ergomake build sent %d bytes of a %d-byte context", results[0].ContextBytes, size)
	}
	return float64(results[0].ContextBytes) / (1 << 20) / took, nil
}

// ergomake runs the ergomake binary in dir and fails with its output when it does not exit 0.
func (b *bench) ergomake(ctx context.Context, dir string, timeout time.Duration, args ...string) error {
	_, err := b.ergomakeOutput(ctx, dir, timeout, args...)
	return err
}

func (b *bench) ergomakeOutput(ctx context.Context, dir string, timeout time.Duration, args ...string) ([]byte, error) {
	return b.ergomakeEnvOutput(ctx, dir, timeout, b.env(), args...)
}

// ergomakeEnvOutput runs the ergomake binary in dir with the environment env and returns its
// standard output, or an error with its standard error when it does not exit 0.
func (b *bench) ergomakeEnvOutput(ctx context.Context, dir string, timeout time.Duration, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.c.ergomake, args...)
	cmd.Dir, cmd.Env = dir, env
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ergomake %v: %v\n%s", args, err, stderr)
	}
	return out, nil
}

// writeTree writes files (relative path → content) under dir.
func writeTree(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
