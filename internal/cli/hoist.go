package cli

import "strings"

// projectFlagNames maps docker compose's project flags and kubectl's cluster flags (long and
// short) to their long names.
var projectFlagNames = map[string]string{
	"f": "file", "file": "file",
	"p": "project-name", "project-name": "project-name",
	"project-directory": "project-directory",
	"profile":           "profile",
	"env-file":          "env-file",
	"kubeconfig":        "kubeconfig",
	"context":           "context",
	"n":                 "namespace", "namespace": "namespace",
}

// hoistProjectFlags lets project and cluster flags come before the verb, as in "docker compose -f
// a.yaml up" or "kubectl -n ns get": "ergomake -f a.yaml -p shop up -d" runs as "ergomake up
// --file a.yaml --project-name shop -d". A verb without such a flag rejects it as usual.
// Moved flags take their long names, so "ergomake -f a.yaml logs -f" keeps -f as --follow.
// Anything else before the verb stays where it is.
func hoistProjectFlags(args []string) []string {
	var moved, kept []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			if len(moved) == 0 || a == "--" {
				return args
			}
			out := append(append(append(kept, a), moved...), args[i+1:]...)
			return out
		}
		name, value, hasValue := strings.TrimLeft(a, "-"), "", false
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = n, v, true
		} else if !strings.HasPrefix(a, "--") && len(name) > 1 {
			// -ffile.yaml: a short flag with its value attached.
			name, value, hasValue = name[:1], name[1:], true
		}
		long, isProject := projectFlagNames[name]
		if isProject && (strings.HasPrefix(a, "--") == (len(name) > 1)) {
			if !hasValue {
				if i+1 >= len(args) {
					return args // flag without its value: let cobra say so
				}
				i++
				value = args[i]
			}
			moved = append(moved, "--"+long+"="+value)
			continue
		}
		kept = append(kept, a)
		// The root's own flags that take a value.
		if (a == "--config") && i+1 < len(args) {
			i++
			kept = append(kept, args[i])
		}
	}
	return args
}
