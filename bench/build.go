package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
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
	buildOnly := res.row("build: unchanged ergomake build / cold ergomake build", "×", 2, target{})
	upload := res.row("build: context upload (64 MiB, ergomake build)", "MiB/s", 1, target{})
	for _, r := range []*row{cold, reup, buildOnly, upload} {
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
		if err := b.ergomake(ctx, p.dir, 3*time.Minute, "down"); err != nil {
			return err
		}
		second, err := b.upDetached(ctx, p)
		if err != nil {
			return fmt.Errorf("build, second up: %w", err)
		}
		if err := b.ergomake(ctx, p.dir, 3*time.Minute, "down"); err != nil {
			return err
		}
		b.logf("build, run %d/%d: first up %.2fs, unchanged re-up %.2fs", run+1, b.c.runs, first, second)
		cold.add(pErgo, first)
		reup.add(pErgo, second/first)

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
	res.notef("build: first up -d = `ergomake up -d` of two services built FROM the test image (COPY, ARG, RUN with a value new to the builder), from exec until it exits with every service ready; unchanged re-up = the same after `ergomake down` (images reused, not built: what remains is up's own work, namespace, pods, containers starting, which a small build does not dwarf); unchanged ergomake build = `ergomake build` of another such project, cold then again unchanged (the build step alone, which reuse cuts); context upload = bytes of context sent (`ergomake build -o json`) / wall time of `ergomake build` of a service whose context is a fresh random 64 MiB file read by a RUN --mount=type=bind step")
	return nil
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.c.ergomake, args...)
	cmd.Dir, cmd.Env = dir, b.env()
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
