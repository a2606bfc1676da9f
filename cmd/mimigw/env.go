package main

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// applyEnv overrides fields of the configuration v (a pointer to a struct
// with yaml tags) from environment variables named after their YAML path:
// smpp.smscs[0].password is MIMIGW_SMPP_SMSCS_0_PASSWORD. Lists of scalars
// take comma-separated values; maps of scalars comma-separated KEY=VALUE
// pairs, split at each pair's last '=' (MIMIGW_GATEWAY_ALPHANUMERIC_SENDERS=
// "mimi://example.com/u/bank=BANK,mimi://example.com/u/shop=SHOP"), which
// replace the whole map. A variable under the prefix that names no key is
// an error, so that a typo does not go unnoticed.
func applyEnv(prefix string, v any, environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, prefix+"_") {
			vars[name] = value
		}
	}
	if len(vars) == 0 {
		return nil
	}
	used := map[string]bool{}
	if err := envWalk(prefix, reflect.ValueOf(v).Elem(), vars, used); err != nil {
		return err
	}
	var unknown []string
	for name := range vars {
		if !used[name] && !envIgnored[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("environment: %s names no configuration key", strings.Join(unknown, ", "))
	}
	return nil
}

// envIgnored are variables under the prefix that are not configuration keys.
var envIgnored = map[string]bool{"MIMIGW_INTEROP": true, "MIMIGW_CONFIG": true}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func envWalk(name string, v reflect.Value, vars map[string]string, used map[string]bool) error {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if !envHasPrefix(vars, name) {
				return nil
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if raw, ok := vars[name]; ok && envLeaf(v) {
		used[name] = true
		if err := envSet(v, raw); err != nil {
			return fmt.Errorf("environment %s=%q: %w", name, raw, err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key, inline := yamlKey(f)
			if key == "-" {
				continue
			}
			child := name
			if !inline {
				child = name + "_" + strings.ToUpper(key)
			}
			if err := envWalk(child, v.Field(i), vars, used); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return nil
		}
		// Elements are addressed by index; an index one past the end
		// appends an element.
		for i := 0; ; i++ {
			child := name + "_" + strconv.Itoa(i)
			if !envHasPrefix(vars, child) {
				break
			}
			if i == v.Len() {
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			}
			if err := envWalk(child, v.Index(i), vars, used); err != nil {
				return err
			}
		}
	}
	return nil
}

func envHasPrefix(vars map[string]string, name string) bool {
	for k := range vars {
		if k == name || strings.HasPrefix(k, name+"_") {
			return true
		}
	}
	return false
}

// envLeaf reports whether v takes its value from a single variable.
func envLeaf(v reflect.Value) bool {
	if v.Addr().Type().Implements(unmarshalerType) {
		return true
	}
	switch v.Kind() {
	case reflect.Struct:
		return false
	case reflect.Slice:
		return v.Type().Elem().Kind() != reflect.Struct
	case reflect.Map:
		return envScalar(v.Type().Key()) && envScalar(v.Type().Elem())
	}
	return true
}

// envScalar reports whether a value of type t is set from one piece of
// text.
func envScalar(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func envSet(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 0, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 0, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		if raw != "" {
			items = strings.Split(raw, ",")
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			if err := envSet(s.Index(i), strings.TrimSpace(item)); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		if strings.TrimSpace(raw) != "" {
			for i, pair := range strings.Split(raw, ",") {
				at := strings.LastIndex(pair, "=")
				if at < 0 {
					return fmt.Errorf("item %d %q: want KEY=VALUE", i, strings.TrimSpace(pair))
				}
				k, val := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				if err := envSet(k, strings.TrimSpace(pair[:at])); err != nil {
					return fmt.Errorf("item %d key: %w", i, err)
				}
				if err := envSet(val, strings.TrimSpace(pair[at+1:])); err != nil {
					return fmt.Errorf("item %d value: %w", i, err)
				}
				m.SetMapIndex(k, val)
			}
		}
		v.Set(m)
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", v.Type())
	}
	return nil
}

// yamlKey returns the YAML key of a struct field and whether it is inlined.
func yamlKey(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("yaml")
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(","+opts+",", ",inline,") {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}
