package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
)

// clkTck is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux everywhere that matters).
const clkTck = 100

// procCPU returns the user+system CPU seconds of pid so far.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return (ut + st) / clkTck, nil
}

// procRSS returns the resident memory of pid in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// selfCPU returns this process's user+system CPU seconds so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// lockedBuffer is the captured output of a subprocess, written and read concurrently.
type lockedBuffer = syncbuf.Buffer

// kubeFwd is one running `kubectl port-forward`.
type kubeFwd struct {
	cmd    *exec.Cmd
	pid    int
	target string      // the pod it forwards to
	local  map[int]int // remote port → local port
	out    *lockedBuffer
	done   chan struct{}
}

var forwardingRe = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)`)

// startKubeFwd runs `kubectl port-forward -n ns target :R1 :R2...` and waits until it listens
// on every port.
func startKubeFwd(ctx context.Context, kubectl, kubeconfig, ns, target string, remotes []int) (*kubeFwd, error) {
	args := []string{"--kubeconfig", kubeconfig, "-n", ns, "port-forward", target}
	for _, r := range remotes {
		args = append(args, fmt.Sprintf(":%d", r))
	}
	k := &kubeFwd{local: map[int]int{}, out: &lockedBuffer{}, done: make(chan struct{})}
	k.cmd = exec.Command(kubectl, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	k.cmd.Stdout, k.cmd.Stderr = pw, pw
	if err := k.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	k.pid = k.cmd.Process.Pid
	found := make(chan [2]int, len(remotes)*2)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = k.out.Write([]byte(line + "\n"))
			if m := forwardingRe.FindStringSubmatch(line); m != nil {
				l, _ := strconv.Atoi(m[1])
				r, _ := strconv.Atoi(m[2])
				found <- [2]int{r, l}
			}
		}
		pr.Close()
	}()
	go func() {
		_ = k.cmd.Wait()
		close(k.done)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for len(k.local) < len(remotes) {
		select {
		case m := <-found:
			k.local[m[0]] = m[1]
		case <-k.done:
			return nil, fmt.Errorf("kubectl port-forward %s ended: %s", target, strings.TrimSpace(k.out.String()))
		case <-timer.C:
			k.stop()
			return nil, fmt.Errorf("kubectl port-forward %s: not listening after 30s: %s", target, strings.TrimSpace(k.out.String()))
		case <-ctx.Done():
			k.stop()
			return nil, ctx.Err()
		}
	}
	return k, nil
}

func (k *kubeFwd) alive() bool {
	select {
	case <-k.done:
		return false
	default:
		return true
	}
}

func (k *kubeFwd) addr(remote int) string {
	return fmt.Sprintf("127.0.0.1:%d", k.local[remote])
}

func (k *kubeFwd) stop() {
	if k == nil {
		return
	}
	_ = k.cmd.Process.Kill()
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
	}
}
