//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestBenchSmoke runs the benchmark program (bench/, `make bench`) with tiny sizes and one run
// against the local cluster, so that it cannot rot: it must end well and print a well-formed
// table with every measure. No number is judged here (PASS or MISS are both fine).
func TestBenchSmoke(t *testing.T) {
	kubecfg := cluster.KubeconfigPath(t)
	kubectl := filepath.Join(cluster.Dir(), "bin", "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl at %s", kubectl)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bench")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/ergomake/ergomake/bench").CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench: %v\n%s", err, out)
	}
	md := filepath.Join(dir, "benchmarks.md")
	if err := os.WriteFile(md, []byte("# Benchmarks\n\nHand-written notes stay.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-kubeconfig", kubecfg, "-kubectl", kubectl, "-ergomake", ergomakeBinary(t),
		"-runs", "1", "-size", "4MiB", "-hol-size", "4MiB", "-echo-n", "20", "-conn-n", "10", "-hol-timeout", "3s",
		"-ttr-services", "1", "-ttr-healthcheck-services", "1", "-scale-services", "2", "-markdown", md, "-command", "smoke")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n--- stdout:\n%s--- stderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("bench output:\n%s", stdout.String())

	var rows [][]string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		if !strings.HasSuffix(l, "|") {
			t.Fatalf("table line does not end with |: %q", l)
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("no table in the output:\n%s", stdout.String())
	}
	head := []string{"Measure", "Unit", "ergomake", "kubectl", "direct", "ergomake/kubectl", "ergomake/direct", "Target", "Result"}
	if strings.Join(rows[0], ",") != strings.Join(head, ",") {
		t.Errorf("header = %q, want %q", rows[0], head)
	}
	if !regexp.MustCompile(`^-+$`).MatchString(rows[1][0]) {
		t.Errorf("second line is not the separator: %q", rows[1])
	}
	v := `([0-9.]+|no answer|forward ended|never|∞)`
	value := regexp.MustCompile(`^(—|` + v + `( \(` + v + `–` + v + `\))?)$`)
	ratio := regexp.MustCompile(`^(—|[0-9.]+×)$`)
	names := map[string]bool{}
	for _, r := range rows[2:] {
		if len(r) != len(head) {
			t.Errorf("row %q has %d cells, want %d", r, len(r), len(head))
			continue
		}
		names[r[0]] = true
		for i := 2; i <= 4; i++ {
			if !value.MatchString(r[i]) {
				t.Errorf("row %q: %s cell %q is not a value", r[0], head[i], r[i])
			}
		}
		if r[2] == "—" && !strings.Contains(r[0], "share") {
			t.Errorf("row %q: no ergomake value", r[0])
		}
		for i := 5; i <= 6; i++ {
			if !ratio.MatchString(r[i]) {
				t.Errorf("row %q: %s cell %q is not a ratio", r[0], head[i], r[i])
			}
		}
		switch r[8] {
		case "PASS", "MISS":
			if r[7] == "" {
				t.Errorf("row %q: judged without a target", r[0])
			}
		case "—":
		default:
			t.Errorf("row %q: result %q", r[0], r[8])
		}
	}
	for _, want := range []string{"1 conn download 4MiB", "1 conn upload 4MiB", "client CPU per GiB, download",
		"client CPU per GiB, upload", "8 conns aggregate download 4MiB", "8 conns slowest share (all active)",
		"echo 64 B keep-alive p50 (n=20)", "new conn + GET p50 (n=10)", "head-of-line echo p99 beside unread 4MiB",
		"recovery: Ready → first new conn OK", "recovery: failed conns after Ready", "time to ready, 1 services", "time to ready, 1 services with healthchecks",
		"scale 2 svcs/4 ports: RSS idle", "scale 2 svcs/4 ports: RSS, 4 conns open"} {
		if !names[want] {
			t.Errorf("no row %q", want)
		}
	}

	doc, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hand-written notes stay.", "<!-- bench:begin", "<!-- bench:end -->", "Reproduce: `smoke`",
		"Machine: ", "| Measure"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("%s lacks %q:\n%s", md, want, doc)
		}
	}
}
