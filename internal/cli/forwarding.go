package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// fwdSession is the port forwarding of one attached session.
type fwdSession struct {
	stop func()
	errc chan error
}

// wait blocks until forwarding has ended (ctx ended, stop called, or a failure) and its listeners
// are closed.
func (s *fwdSession) wait() error { return <-s.errc }

// publishedPorts are the ports of the environment to forward: every `ports` entry compose
// publishes (never `expose`), of the services in only (all when nil).
func publishedPorts(env *v1alpha1.ErgomakeEnv, only map[string]bool) []forward.Port {
	var out []forward.Port
	for _, s := range env.Spec.Services {
		if only != nil && !only[s.Name] {
			continue
		}
		for _, p := range s.Ports {
			if !p.Publish {
				continue
			}
			fp := forward.Port{
				Service:    s.Name,
				Selector:   map[string]string{v1alpha1.LabelEnv: env.Name, v1alpha1.LabelService: s.Name},
				RemotePort: p.Target,
				HostIP:     p.HostIP,
				Protocol:   p.Protocol,
			}
			if lo, hi, ok := strings.Cut(p.Published, "-"); ok {
				a, errA := strconv.Atoi(lo)
				b, errB := strconv.Atoi(hi)
				if errA == nil && errB == nil {
					fp.LocalRange = [2]int{a, b}
				}
			} else if n, err := strconv.Atoi(p.Published); err == nil {
				fp.LocalPort = n
			}
			out = append(out, fp)
		}
	}
	return out
}

// startForwarding binds a local listener for every published port of the environment, prints
// where each one is, and forwards until ctx ends or stop is called.
func startForwarding(ctx context.Context, ios *iostreams.IOStreams, status *ui.Status, client *kube.Client,
	env *v1alpha1.ErgomakeEnv, only map[string]bool) (*fwdSession, error) {
	sctx, cancel := context.WithCancel(ctx)
	s := &fwdSession{stop: cancel, errc: make(chan error, 1)}
	ports := publishedPorts(env, only)
	if len(ports) == 0 {
		fmt.Fprintln(ios.Out, "No published ports to forward.")
		go func() { <-sctx.Done(); s.errc <- nil }()
		return s, nil
	}
	fwd, err := forward.New(client.Config, env.Namespace, forward.Options{
		Logf: func(format string, args ...any) { status.Logf("%s", shortenForwardError(fmt.Sprintf(format, args...))) },
	})
	if err != nil {
		cancel()
		return nil, err
	}
	bindings, err := fwd.Bind(ports)
	if err != nil {
		cancel()
		_ = fwd.Close()
		return nil, err
	}
	printBindings(ios, bindings)
	go func() {
		err := fwd.Serve(sctx)
		if sctx.Err() != nil {
			err = nil
		}
		s.errc <- err
	}()
	return s, nil
}

// printBindings prints one line per published port: `service · localhost:PORT → PORT`, with a
// note when the local port is not the one asked for or nothing could be bound.
func printBindings(ios *iostreams.IOStreams, bindings []forward.Binding) {
	styles := ui.NewStyles(ios.ColorEnabled())
	width := 0
	for _, b := range bindings {
		width = max(width, len(b.Port.Service))
	}
	for _, b := range bindings {
		remote := fmt.Sprint(b.Port.RemotePort)
		if p := strings.ToUpper(b.Port.Protocol); p != "" && p != "TCP" {
			remote += "/" + strings.ToLower(p)
		}
		name := b.Port.Service + strings.Repeat(" ", width-len(b.Port.Service))
		var line string
		if b.LocalPort == 0 {
			line = fmt.Sprintf("%s · %s not forwarded", styles.Bold.Render(name), remote)
		} else {
			host := "localhost"
			if b.Port.HostIP != "" {
				host = b.Port.HostIP
				if strings.Contains(host, ":") {
					host = "[" + host + "]"
				}
			}
			line = fmt.Sprintf("%s · %s → %s", styles.Bold.Render(name),
				styles.Accent.Render(fmt.Sprintf("%s:%d", host, b.LocalPort)), remote)
		}
		if b.Note != "" {
			line += "  " + styles.Dim.Render("("+b.Note+")")
		}
		fmt.Fprintln(ios.Out, line)
	}
}

// shortenForwardError shortens the kubelet's answer when nothing listens on the port inside the
// pod (several hundred characters naming network namespaces and container IDs) to what the user
// can act on.
func shortenForwardError(line string) string {
	i := strings.Index(line, ": error forwarding port ")
	if i < 0 || !strings.Contains(line[i:], "connection refused") {
		return line
	}
	return line[:i] + ": connection refused inside the pod (is anything listening on that port?)"
}
