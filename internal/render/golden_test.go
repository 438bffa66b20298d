package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Each testdata/<case>/ holds env.yaml (an ErgomakeEnv), optionally options.yaml (Options) and
// clusterips.yaml (Service name -> ClusterIP, passed as Options.ClusterIPs), and objects.golden.yaml: every rendered object, in
// List order, as a multi-document YAML stream.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "env.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no testdata/*/env.yaml")
	}
	for _, envFile := range dirs {
		dir := filepath.Dir(envFile)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			env := loadEnv(t, envFile)
			var opts Options
			// options.yaml: further Options fields by their Go names (DNSServer, ClusterDomain).
			if b, err := os.ReadFile(filepath.Join(dir, "options.yaml")); err == nil {
				if err := yaml.UnmarshalStrict(b, &opts); err != nil {
					t.Fatalf("options.yaml: %v", err)
				}
			} else if !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "clusterips.yaml")); err == nil {
				if err := yaml.UnmarshalStrict(b, &opts.ClusterIPs); err != nil {
					t.Fatalf("clusterips.yaml: %v", err)
				}
			} else if !os.IsNotExist(err) {
				t.Fatal(err)
			}
			objs, err := Render(env, opts)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := marshalObjects(t, objs)

			// Rendering is deterministic.
			again, err := Render(loadEnv(t, envFile), opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, marshalObjects(t, again)) {
				t.Fatal("two renders of the same environment differ")
			}

			golden := filepath.Join(dir, "objects.golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/render -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered objects (run go test ./internal/render -update and review the diff)\n%s",
					golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

func loadEnv(t *testing.T, file string) *v1alpha1.ErgomakeEnv {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := &v1alpha1.ErgomakeEnv{}
	if err := yaml.UnmarshalStrict(b, env); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return env
}

func marshalObjects(t *testing.T, objs *Objects) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i, o := range objs.List() {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	var out bytes.Buffer
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if bytes.Equal(wl, gl) {
			continue
		}
		out.WriteString("line ")
		out.WriteString(strconv.Itoa(i + 1))
		out.WriteString(":\n  want: ")
		out.Write(wl)
		out.WriteString("\n  got:  ")
		out.Write(gl)
		out.WriteString("\n")
		if shown++; shown == 10 {
			break
		}
	}
	return out.String()
}

// TestObjectsShareNoMemoryWithTheSpec changes every value reachable in the rendered objects and
// checks the environment did not change: clients decode API answers into the objects they send.
func TestObjectsShareNoMemoryWithTheSpec(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "env.yaml"))
	for _, f := range files {
		env := loadEnv(t, f)
		before := env.DeepCopy()
		objs, err := Render(env, Options{ClusterIPs: map[string]string{"minio": "10.96.0.9"}})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs.List() {
			scribble(reflect.ValueOf(o))
		}
		if !reflect.DeepEqual(env, before) {
			t.Errorf("%s: changing the rendered objects changed the environment", f)
		}
	}
}

var quantityType = reflect.TypeOf(resource.Quantity{})

// scribble overwrites every settable value reachable from v.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == quantityType {
			if v.CanSet() {
				v.Set(reflect.ValueOf(resource.MustParse("7")))
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				scribble(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			scribble(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			scribble(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "~")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	}
}
