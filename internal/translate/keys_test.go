package translate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// notTranslated are compose service keys that need no translation and no warning, with why.
var notTranslated = map[string]string{
	"name":                "the service's name itself",
	"profiles":            "applied by compose-go when loading (inactive services are not in the project)",
	"extends":             "resolved by compose-go when loading",
	"env_file":            "folded into environment by compose-go when loading",
	"label_file":          "folded into labels by compose-go when loading",
	"attach":              "only decides which logs docker compose attaches to",
	"healthcheck.disable": "disable alone means no healthcheck, which is also what no healthcheck gives",
}

type leaf struct {
	key   string // yaml path, e.g. deploy.resources.limits.cpus
	index [][]int
}

// serviceLeaves enumerates the keys of a compose service: every field of ServiceConfig (through
// inlined structs), and for struct-valued keys (deploy, healthcheck, logging...) every field of
// those, recursively. Maps and lists are filled as a whole.
func serviceLeaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, path [][]int, depth int)
	walk = func(t reflect.Type, prefix string, path [][]int, depth int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([][]int{}, path...), []int{i})
			if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				// inlined structs share the prefix: flatten the index into the last element
				last := append(append([]int{}, path[len(path)-1]...), i)
				walk(f.Type, prefix, append(append([][]int{}, path[:len(path)-1]...), last), depth)
				continue
			}
			if name == "" || name == "-" || strings.HasPrefix(name, "#") || !f.IsExported() {
				continue
			}
			key := prefix + name
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && depth < 4 && hasYAMLFields(ft) {
				walk(ft, key+".", idx, depth+1)
				continue
			}
			out = append(out, leaf{key: key, index: idx})
		}
	}
	walk(reflect.TypeOf(types.ServiceConfig{}), "", [][]int{{}}, 0)
	return out
}

func hasYAMLFields(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); n != "" && n != "-" && !strings.HasPrefix(n, "#") {
			return true
		}
	}
	return false
}

// set fills the field at index (a path of struct field indices, one list per struct level)
// inside v, allocating pointers on the way.
func set(v reflect.Value, index [][]int) {
	for level, idx := range index {
		for _, i := range idx {
			v = v.Field(i)
		}
		if level == len(index)-1 {
			fill(v, 0)
			return
		}
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
	}
}

// fill gives v a non-zero value of its type.
func fill(v reflect.Value, depth int) {
	if depth > 6 || !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

func baseProject(t *testing.T, s types.ServiceConfig) *types.Project {
	t.Helper()
	dir := t.TempDir()
	s.Name = "svc"
	if s.Image == "" {
		s.Image = "nginx"
	}
	return &types.Project{
		Name:         "keys",
		WorkingDir:   dir,
		ComposeFiles: []string{dir + "/compose.yaml"},
		Services:     types.Services{"svc": s},
		Environment:  types.Mapping{},
	}
}

func snapshot(t *testing.T, r *Result) string {
	t.Helper()
	b, err := json.Marshal(struct {
		Env        any
		Secrets    any
		ConfigMaps any
	}{r.Env, r.Secrets, r.ConfigMaps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEveryServiceKeyIsTranslatedOrWarned sets each compose service key in turn (found by
// reflection over compose-go's types.ServiceConfig, so keys added by a compose-go upgrade are
// covered) and fails unless the translation changes, a warning names the key, or translation
// fails with an error: no key may be dropped silently.
func TestEveryServiceKeyIsTranslatedOrWarned(t *testing.T) {
	base, err := Translate(baseProject(t, types.ServiceConfig{}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, base)
	leaves := serviceLeaves()
	if len(leaves) < 100 {
		t.Fatalf("only %d keys found: the reflection walk is broken", len(leaves))
	}
	for _, l := range leaves {
		if _, ok := notTranslated[l.key]; ok {
			continue
		}
		if _, ok := notTranslated[strings.SplitN(l.key, ".", 2)[0]]; ok {
			continue
		}
		t.Run(l.key, func(t *testing.T) {
			var s types.ServiceConfig
			set(reflect.ValueOf(&s).Elem(), l.index)
			if reflect.DeepEqual(s, types.ServiceConfig{}) {
				t.Fatalf("could not set %s", l.key)
			}
			res, err := Translate(baseProject(t, s), Options{})
			if err != nil {
				return // a clear error is not a silent drop
			}
			top := strings.SplitN(l.key, ".", 2)[0]
			for _, w := range res.Warnings {
				if w.Key == top || strings.HasPrefix(w.Key, top+".") || strings.HasPrefix(l.key, w.Key) {
					return
				}
			}
			if snapshot(t, res) == want {
				t.Errorf("key %s is dropped silently: translate it, warn about it, or list it in notTranslated", l.key)
			}
		})
	}
}
