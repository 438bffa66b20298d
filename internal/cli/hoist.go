package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// hoistFlags lets project and cluster flags come before the verb, as in "docker compose -f
// a.yaml up" or "kubectl -n ns get": "ergomake -f a.yaml -p shop up -d" runs as "ergomake up
// --file=a.yaml --project-name=shop -d". A verb without such a flag rejects it as usual.
// Moved flags take their long names, so "ergomake -f a.yaml logs -f" keeps -f as --follow.
// Anything else before the verb stays where it is.
//
// The flags that may move are read from root's verbs: every flag in the Project or Cluster group
// (addProjectFlags, addClusterFlags), with its shorthand. The root's own flags that take a value
// (--config) keep theirs.
func hoistFlags(root *cobra.Command, args []string) []string {
	h := newHoistable(root)
	var moved, kept []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			if len(moved) == 0 || a == "--" {
				return args
			}
			return append(append(append(kept, a), moved...), args[i+1:]...)
		}
		long := strings.HasPrefix(a, "--")
		name, value, hasValue := strings.TrimLeft(a, "-"), "", false
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = n, v, true
		} else if !long && len(name) > 1 {
			// -ffile.yaml: a short flag with its value attached.
			name, value, hasValue = name[:1], name[1:], true
		}
		if f := h.lookup(name, long); f != nil {
			if !hasValue && f.NoOptDefVal == "" {
				if i+1 >= len(args) {
					return args // flag without its value: let cobra say so
				}
				i++
				value, hasValue = args[i], true
			}
			if hasValue {
				moved = append(moved, "--"+f.Name+"="+value)
			} else {
				moved = append(moved, "--"+f.Name)
			}
			continue
		}
		kept = append(kept, a)
		if long && !hasValue {
			if f := h.root.Lookup(name); f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				kept = append(kept, args[i])
			}
		}
	}
	return args
}

// hoistable are the flags that may come before the verb, and the root's own.
type hoistable struct {
	byName, byShort map[string]*pflag.Flag
	root            *pflag.FlagSet
}

func newHoistable(root *cobra.Command) hoistable {
	h := hoistable{byName: map[string]*pflag.Flag{}, byShort: map[string]*pflag.Flag{}, root: pflag.NewFlagSet("root", pflag.ContinueOnError)}
	h.root.AddFlagSet(root.PersistentFlags())
	h.root.AddFlagSet(root.LocalNonPersistentFlags())
	for _, c := range root.Commands() {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if g := f.Annotations[groupAnnotation]; len(g) == 0 || (g[0] != groupProject && g[0] != groupCluster) {
				return
			}
			if h.byName[f.Name] == nil {
				h.byName[f.Name] = f
			}
			if f.Shorthand != "" && h.byShort[f.Shorthand] == nil {
				h.byShort[f.Shorthand] = f
			}
		})
	}
	return h
}

// lookup finds a hoistable flag by its long name (--name) or its shorthand (-n).
func (h hoistable) lookup(name string, long bool) *pflag.Flag {
	if long {
		return h.byName[name]
	}
	if len(name) == 1 {
		return h.byShort[name]
	}
	return nil
}
