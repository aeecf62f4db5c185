package config

import (
	"reflect"
	"strings"
)

// Values maps every key to its value in c, derived from the struct's
// mapstructure tags, so what `config show` prints is what the program uses
// and no key can be forgotten.
func (c *Config) Values() map[string]any {
	out := map[string]any{}
	flatten(reflect.ValueOf(c).Elem(), "", out)
	return out
}

func flatten(v reflect.Value, prefix string, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
		if tag == "" {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.Type().PkgPath() == t.PkgPath() {
			flatten(f, prefix+tag+".", out)
			continue
		}
		out[prefix+tag] = f.Interface()
	}
}
