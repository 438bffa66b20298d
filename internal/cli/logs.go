package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// LogsOptions are the options of `ergomake logs`.
type LogsOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	// Services limits the logs to these compose services (all when empty).
	Services []string
	// Follow keeps streaming new lines.
	Follow bool
	// Tail is the number of lines to show from the end of each log; negative means all.
	Tail int64
	// Timestamps prefixes each line with its time.
	Timestamps bool
}

// NewCmdLogs returns `ergomake logs`.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "logs [SERVICE...] [flags]",
		Short: "Show the logs of the project's services",
		Long: `Show the logs of the compose project's services on the cluster, each line prefixed with its
service's name, as "docker compose logs" prints them.`,
		Example: `  ergomake logs
  ergomake logs -f --tail 100 web worker`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if len(args) > 0 {
				opts.Services = args
			}
			if runF != nil {
				return runF(opts)
			}
			return logsRun(opts)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "follow log output")
	fs.Int64Var(&opts.Tail, "tail", -1, "number of lines to show from the end of each log (-1: all)")
	fs.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show timestamps")
	addProjectFlags(cmd, &opts.Project) // -f is --follow here, as in docker compose logs
	addClusterFlags(cmd, &opts.Cluster)
	addServerFlag(cmd, &opts.Cluster)
	cmd.ValidArgsFunction = completeServices(f, &opts.Project)
	return cmd
}

func logsRun(opts *LogsOptions) error {
	ctx := opts.Context
	target, err := openEnvVia(ctx, opts.Factory, opts.Project, opts.Cluster, opts.Services, true)
	if err != nil {
		return err
	}
	client, env, only := target.client, target.env, target.only
	var names []string
	for _, s := range env.Spec.Services {
		if only == nil || only[s.Name] {
			names = append(names, s.Name)
		}
	}
	m := newLogMux(opts.IO, names)
	if target.srv != nil {
		return m.runServer(ctx, target.srv, env, only, opts.Follow, opts.Tail, opts.Timestamps)
	}
	return m.run(ctx, client, env, only, opts.Follow, opts.Tail, opts.Timestamps)
}

// logMux prints the log lines of many pods, each prefixed with its service and replica number
// ("web-1  | ..."), coloured per service on a terminal, as docker compose prints them.
type logMux struct {
	mu     sync.Mutex
	w      io.Writer
	styles *ui.Styles
	width  int
	colors map[string]lipgloss.Style

	// byLabel maps the label value of each service's name (what pods carry, render.LabelValue)
	// back to the compose name.
	byLabel map[string]string

	// next and index number the pods of each service in the order they were first seen.
	next  map[string]int
	index map[string]int // pod UID → number
	runs  kube.LogRuns
	wg    sync.WaitGroup
}

// Colours of service prefixes, in docker compose's order.
var logColors = []string{"6", "3", "2", "5", "4", "14", "11", "10", "13", "12"}

func newLogMux(ios *iostreams.IOStreams, services []string) *logMux {
	m := &logMux{w: ios.Out, styles: ui.NewStyles(ios.ColorEnabled()), colors: map[string]lipgloss.Style{},
		next: map[string]int{}, index: map[string]int{}, byLabel: map[string]string{}}
	for i, s := range services {
		m.byLabel[render.LabelValue(s)] = s
		m.colors[s] = m.styles.NewStyle().Foreground(lipgloss.Color(logColors[i%len(logColors)]))
		m.width = max(m.width, len(s)+2) // "-1"
	}
	return m
}

// service is the compose name of the pod's service: its label carries render.LabelValue of the
// name, which differs from the name when that is no label value (`worker_`, over 63 characters).
func (m *logMux) service(pod *corev1.Pod) string {
	label := pod.Labels[v1alpha1.LabelService]
	if name, ok := m.byLabel[label]; ok {
		return name
	}
	return label
}

func (m *logMux) prefix(pod *corev1.Pod) string {
	svc := m.service(pod)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.index[string(pod.UID)]
	if !ok {
		m.next[svc]++
		n = m.next[svc]
		m.index[string(pod.UID)] = n
	}
	name := fmt.Sprintf("%s-%d", svc, n)
	if len(name) > m.width {
		m.width = len(name)
	}
	return name
}

func (m *logMux) line(svc, name, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pad := name + strings.Repeat(" ", max(0, m.width-len(name)))
	st, ok := m.colors[svc]
	if !ok {
		st = m.styles.NewStyle()
	}
	fmt.Fprintf(m.w, "%s | %s\n", st.Render(pad), text)
}

// run streams the logs of every pod of the environment (of the services in only, when not nil).
// With follow, it keeps streaming, picking up pods that start later, until ctx ends.
func (m *logMux) run(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv, only map[string]bool,
	follow bool, tail int64, timestamps bool) error {
	pods, err := client.ServicePods(ctx, env.Namespace, env.Name, "")
	if err != nil {
		return err
	}
	// Number the pods in creation order, per service, before any line is printed.
	for i := range pods {
		if only == nil || only[m.service(&pods[i])] {
			m.prefix(&pods[i])
		}
	}
	for i := range pods {
		m.maybeStream(ctx, client, &pods[i], only, follow, tail, timestamps)
	}
	if !follow {
		m.wg.Wait()
		return nil
	}
	// Follow: watch for pods that start (replacements, restarts) and stream them too.
	sel := v1alpha1.LabelEnv + "=" + render.LabelValue(env.Name)
	rv := ""
	for ctx.Err() == nil {
		l, err := client.Kube.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv})
		if err != nil {
			break
		}
		// Pods and containers that start from now on are shown from their first line.
		for i := range l.Items {
			m.maybeStream(ctx, client, &l.Items[i], only, follow, -1, timestamps)
		}
		w, err := client.Kube.CoreV1().Pods(env.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: l.ResourceVersion})
		if err != nil {
			break
		}
		for ev := range w.ResultChan() {
			if pod, ok := ev.Object.(*corev1.Pod); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				m.maybeStream(ctx, client, pod, only, follow, -1, timestamps)
			}
		}
		w.Stop()
	}
	m.wg.Wait()
	return nil // Ctrl-C ends following; not an error
}

// maybeStream starts streaming a pod's log once its container has started, once per container
// run.
func (m *logMux) maybeStream(ctx context.Context, client *kube.Client, pod *corev1.Pod, only map[string]bool,
	follow bool, tail int64, timestamps bool) {
	svc := m.service(pod)
	if only != nil && !only[svc] {
		return
	}
	if !m.runs.Start(pod) {
		return
	}
	name := m.prefix(pod)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := kube.StreamLog(ctx, client.Kube, pod, follow, timestamps, tail, func(line string) { m.line(svc, name, line) })
		if err != nil && ctx.Err() == nil {
			m.line(svc, name, fmt.Sprintf("(cannot read the log: %v)", client.Explain(err)))
		}
	}()
}

// runServer streams the logs through the ergomake server, which reads every pod of the services
// (of all of them when only is nil), picking up the pods that start later when following.
func (m *logMux) runServer(ctx context.Context, c *server.Client, env *v1alpha1.ErgomakeEnv, only map[string]bool,
	follow bool, tail int64, timestamps bool) error {
	services := []string{""}
	if only != nil {
		services = services[:0]
		for _, s := range env.Spec.Services {
			if only[s.Name] {
				services = append(services, s.Name)
			}
		}
	}
	errs := make(chan error, len(services))
	for _, svc := range services {
		go func() {
			err := c.Logs(ctx, env.Spec.Project, server.LogOptions{Service: svc, Follow: follow, Tail: tail, Timestamps: timestamps},
				func(l server.LogLine) error {
					name := m.podName(l.Service, l.Pod)
					if l.Error != "" {
						m.line(l.Service, name, fmt.Sprintf("(cannot read the log: %s)", l.Error))
						return nil
					}
					m.line(l.Service, name, l.Line)
					return nil
				})
			errs <- err
		}()
	}
	var first error
	for range services {
		if err := <-errs; err != nil && first == nil && ctx.Err() == nil {
			first = serverError(c, err)
		}
	}
	return first // Ctrl-C ends following; not an error
}

// podName is the prefix of a pod's lines ("web-1"), the pods of each service numbered in the
// order their first line comes.
func (m *logMux) podName(service, pod string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.index[pod]
	if !ok {
		m.next[service]++
		n = m.next[service]
		m.index[pod] = n
	}
	name := fmt.Sprintf("%s-%d", service, n)
	if len(name) > m.width {
		m.width = len(name)
	}
	return name
}
