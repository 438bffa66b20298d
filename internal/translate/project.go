package translate

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"

	"github.com/compose-spec/compose-go/v2/types"
)

// The compose project on the wire to the ergomake server (ApplyRequest.Project). compose-go's own
// JSON is a view of the project, not a copy: it leaves out what translate needs (the project
// directory, the compose files, the environment of the load, each service's name, inline secret
// contents) and writes some values in forms it cannot read back (file modes, ulimits, extra hosts,
// SSH keys). EncodeProject writes every exported field of the Go value instead, by its Go name,
// and DecodeProject reads exactly that back: the server translates the very project the CLI
// loaded.

// EncodeProject is the loaded project as JSON for the ergomake server.
func EncodeProject(p *types.Project) ([]byte, error) {
	if p == nil {
		return nil, errors.New("no compose project")
	}
	tree, err := toTree(reflect.ValueOf(p))
	if err != nil {
		return nil, fmt.Errorf("encoding the project: %w", err)
	}
	return json.Marshal(tree)
}

// DecodeProject reads what EncodeProject wrote, as the ergomake server receives it. It checks the
// form (values of the types of types.Project, an absolute project directory and compose files);
// translate checks the rest.
func DecodeProject(b []byte) (*types.Project, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("project: %w", err)
	}
	var p types.Project
	if err := fromTree(tree, reflect.ValueOf(&p).Elem(), "project"); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(p.WorkingDir) {
		return nil, errors.New("project: want the project as translate.EncodeProject writes it, with its absolute WorkingDir")
	}
	for _, f := range p.ComposeFiles {
		if !filepath.IsAbs(f) {
			return nil, fmt.Errorf("project: compose file %q is not an absolute path", f)
		}
	}
	for name, s := range p.Services {
		if s.Name != name {
			return nil, fmt.Errorf("project: service %q is named %q", name, s.Name)
		}
	}
	return &p, nil
}

var (
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// textual: values of t travel as their text (time.Time), not field by field.
func textual(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.Implements(textMarshaler) && reflect.PointerTo(t).Implements(textUnmarshaler)
}

// toTree turns v into what encoding/json writes as is: structs as objects of their exported
// fields by Go name, nil pointers, maps and slices as null.
func toTree(v reflect.Value) (any, error) {
	switch v.Kind() {
	case reflect.Invalid:
		return nil, nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		return toTree(v.Elem())
	case reflect.Struct:
		if textual(v.Type()) {
			b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
			return string(b), err
		}
		m := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			x, err := toTree(v.Field(i))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			m[f.Name] = x
		}
		return m, nil
	case reflect.Map:
		if v.IsNil() {
			return nil, nil
		}
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map with %s keys", v.Type().Key())
		}
		m := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			x, err := toTree(it.Value())
			if err != nil {
				return nil, err
			}
			m[it.Key().String()] = x
		}
		return m, nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, nil
		}
		l := make([]any, v.Len())
		for i := range l {
			x, err := toTree(v.Index(i))
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	}
	return nil, fmt.Errorf("cannot encode a %s", v.Type())
}

// fromTree is toTree's inverse: it fills v (settable) from tree, as json.Decoder with UseNumber
// read it. at names the place, for errors.
func fromTree(tree any, v reflect.Value, at string) error {
	if tree == nil {
		return nil
	}
	bad := func() error { return fmt.Errorf("%s: want a %s, not %T", at, v.Type(), tree) }
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := fromTree(tree, p.Elem(), at); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Interface:
		if v.NumMethod() != 0 {
			return bad()
		}
		v.Set(reflect.ValueOf(plain(tree)))
		return nil
	case reflect.Struct:
		if textual(v.Type()) {
			s, ok := tree.(string)
			if !ok {
				return bad()
			}
			return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
		}
		m, ok := tree.(map[string]any)
		if !ok {
			return bad()
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if x, ok := m[f.Name]; ok && f.IsExported() {
				if err := fromTree(x, v.Field(i), at+"."+f.Name); err != nil {
					return err
				}
			}
		}
		return nil
	case reflect.Map:
		m, ok := tree.(map[string]any)
		if !ok || v.Type().Key().Kind() != reflect.String {
			return bad()
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for k, x := range m {
			e := reflect.New(v.Type().Elem()).Elem()
			if err := fromTree(x, e, at+"."+k); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(out)
		return nil
	case reflect.Slice, reflect.Array:
		l, ok := tree.([]any)
		if !ok {
			return bad()
		}
		if v.Kind() == reflect.Slice {
			v.Set(reflect.MakeSlice(v.Type(), len(l), len(l)))
		} else if len(l) != v.Len() {
			return bad()
		}
		for i, x := range l {
			if err := fromTree(x, v.Index(i), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Bool:
		b, ok := tree.(bool)
		if !ok {
			return bad()
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tree.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || v.OverflowInt(i) {
			return bad()
		}
		v.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := tree.(json.Number)
		var u uint64
		_, err := fmt.Sscan(string(n), &u)
		if !ok || err != nil || v.OverflowUint(u) {
			return bad()
		}
		v.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := tree.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil {
			return bad()
		}
		v.SetFloat(f)
		return nil
	case reflect.String:
		s, ok := tree.(string)
		if !ok {
			return bad()
		}
		v.SetString(s)
		return nil
	}
	return bad()
}

// plain is a value for an interface{} field (compose extensions): numbers as int when whole, else
// float64, as YAML loaded them.
func plain(tree any) any {
	switch x := tree.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
	}
	return tree
}
