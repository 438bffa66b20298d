package compose

import (
	"reflect"
	"strings"
)

// yamlKeys lists the yaml keys of a struct, descending into inlined structs.
func yamlKeys(v any) []string { return yamlKeysOf(reflect.TypeOf(v)) }

func yamlKeysOf(typ reflect.Type) []string {
	var keys []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" || name == "-" || strings.HasPrefix(name, "#") {
				continue
			}
			keys = append(keys, name)
		}
	}
	walk(typ)
	return keys
}

// fieldByYAML finds the type of the field tagged key, descending into inlined structs.
func fieldByYAML(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			if ft, ok := fieldByYAML(f.Type, key); ok {
				return ft, true
			}
			continue
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}
