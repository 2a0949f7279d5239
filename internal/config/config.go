// Package config loads edgemo's YAML configuration: global sections, camera
// defaults and a `cameras:` map whose entries override the defaults key by
// key. Errors name the file, the line and the key; ${ENV} references are
// substituted before parsing so secrets stay out of the file.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Path is the file the config came from ("" for the embedded default).
func (c *Config) Path() string { return c.path }

//go:embed default.yaml
var defaultYAML []byte

// Example returns the embedded default configuration's text.
func Example() []byte { return bytes.Clone(defaultYAML) }

// Default is the embedded configuration `edgemo run` uses without a file:
// the bundled sample on a loop, the embedded broker, the dashboard.
func Default() (*Config, error) { return Parse("(embedded default)", defaultYAML) }

// Load reads and validates path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv substitutes ${VAR} and ${VAR:-default}; an unset VAR without a
// default is an error naming the line, so a missing secret is never sent as "".
func expandEnv(path string, b []byte) ([]byte, error) {
	var errs []error
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if t := bytes.TrimSpace(line); bytes.HasPrefix(t, []byte("#")) {
			continue
		}
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			sub := envRef.FindSubmatch(m)
			if v, ok := os.LookupEnv(string(sub[1])); ok {
				return []byte(v)
			}
			if len(sub[2]) > 0 {
				return sub[3]
			}
			errs = append(errs, fmt.Errorf("%s:%d: environment variable %s is not set (export it, or write ${%s:-default})", path, i+1, sub[1], sub[1]))
			return m
		})
	}
	return bytes.Join(lines, []byte("\n")), errors.Join(errs...)
}

// Parse parses and validates YAML text; name is used in errors.
func Parse(name string, b []byte) (*Config, error) {
	b, err := expandEnv(name, b)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, locate(name, "", errors.New(cleanYAMLErr(err)))
	}
	c := &Config{path: name, lines: map[string]int{}}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty config: add at least a cameras: section (see edgemo.example.yaml)", name)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the config must be a mapping of sections (mqtt:, cameras:, …)", name, doc.Line)
	}
	if err := checkDuplicates(name, doc, ""); err != nil {
		return nil, err
	}
	indexLines(doc, "", c.lines)

	// Everything but cameras decodes strictly (unknown keys are errors).
	var camsNode *yaml.Node
	rest := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "cameras" {
			camsNode = doc.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, doc.Content[i], doc.Content[i+1])
	}
	if err := strictDecode(rest, c, ""); err != nil {
		return nil, locate(name, "", err)
	}
	c.Cameras = map[string]Camera{}
	if camsNode != nil && camsNode.Kind != yaml.ScalarNode {
		if camsNode.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: cameras must be a mapping of name: {source: …}", name, camsNode.Line)
		}
		for i := 0; i+1 < len(camsNode.Content); i += 2 {
			camName, node := camsNode.Content[i].Value, camsNode.Content[i+1]
			cam := c.Defaults.clone() // the camera's keys override the defaults'
			if err := strictDecode(node, &cam, "cameras."+camName); err != nil {
				return nil, locate(name, "cameras."+camName, err)
			}
			c.Cameras[camName] = cam
		}
	}
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// strictDecode checks n against v's type first (unknown keys, scalars of
// the wrong type: errors that name the key and what it wants), then
// decodes it. base is the key n sits at ("cameras.door").
func strictDecode(n *yaml.Node, v any, base string) error {
	w := &walker{base: base, budget: maxNodes}
	if err := w.check(n, reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		return errors.New(cleanYAMLErr(err))
	}
	return nil
}

// maxNodes bounds the nodes a walker visits, aliases followed: a few
// anchors referring to each other would otherwise expand exponentially
// (yaml's "billion laughs").
const maxNodes = 100_000

var durationType = reflect.TypeOf(Duration(0))

type walker struct {
	base   string
	budget int
}

// check reports the first key in n that t has no yaml field for (with
// the keys that are known), and the first scalar that is not of its
// field's type, naming the key and the type wanted. key is relative to
// w.base.
func (w *walker) check(n *yaml.Node, t reflect.Type, key string) error {
	if w.budget--; w.budget < 0 {
		return fmt.Errorf("line %d: the config has too many nodes or aliases (over %d): write it out plainly", n.Line, maxNodes)
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value leaves the field unset
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return typeErr(n, join(w.base, key), "a duration such as 10s or 1m30s")
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return typeErr(n, join(w.base, key), "a duration such as 10s or 1m30s")
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return typeErr(n, join(w.base, key), "a mapping of keys (key: value)")
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return typeErr(n, join(w.base, key), "a list, e.g. [a, b]")
		}
		for _, e := range n.Content {
			if err := w.check(e, t.Elem(), key); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return typeErr(n, join(w.base, key), "a mapping of keys (key: value)")
		}
		return nil
	default:
		return checkScalar(n, t, join(w.base, key))
	}
	fields := map[string]reflect.Type{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fields[tag] = f.Type
		known = append(known, tag)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := fields[k.Value]
		if !ok {
			sort.Strings(known)
			return fmt.Errorf("line %d: unknown key %q%s (known keys: %s)", k.Line, k.Value, inKey(key), strings.Join(known, ", "))
		}
		if err := w.check(n.Content[i+1], ft, join(key, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

// checkScalar: n must be a scalar that decodes into t.
func checkScalar(n *yaml.Node, t reflect.Type, key string) error {
	want, tags := "", ""
	switch t.Kind() {
	case reflect.Bool:
		want, tags = "true or false", "!!bool"
	case reflect.Int, reflect.Int64, reflect.Int32:
		want, tags = "a whole number", "!!int" // yaml would truncate 1.5 to 1
	case reflect.Float64, reflect.Float32:
		want, tags = "a number", "!!int !!float"
	case reflect.String:
		want = "a string"
	default:
		return nil
	}
	if u, ok := units[leaf(key)]; ok {
		want += "; want " + want + " " + u
	}
	if n.Kind != yaml.ScalarNode || tags != "" && !strings.Contains(tags, n.ShortTag()) {
		return typeErr(n, key, want)
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return typeErr(n, key, want)
	}
	return nil
}

// units say what a number counts, so a type error can say what to write.
var units = map[string]string{
	"fps": "of frames per second", "detect_every": "of frames", "detect_width": "of pixels", "detect_max_every": "of frames", "detect_region_every": "of frames",
	"motion_threshold": "(a fraction of the frame, e.g. 0.002)", "motion_outside": "(a fraction of the frame, e.g. 0.03)",
	"crop_size": "of pixels", "crop_margin": "(a fraction of the face box, e.g. 0.25)",
	"length": "of crops", "stride": "of crops", "threads": "of threads", "queue_size": "of trees",
	"qos": "(0, 1 or 2)", "max_packet_size": "of bytes", "max_retained": "of messages",
	"videmo_question_batch": "of questions", "videmo_caption_tokens": "of tokens",
}

func leaf(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// typeErr: `line 7: cameras.door.fps: "two" is not a number; want a
// number of frames per second`.
func typeErr(n *yaml.Node, key, want string) error {
	got := fmt.Sprintf("%q", n.Value)
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	}
	if key == "" {
		return fmt.Errorf("line %d: %s is not %s", n.Line, got, want)
	}
	return fmt.Errorf("line %d: %s: %s is not %s", n.Line, key, got, want)
}

// checkDuplicates reports a key given twice in one mapping (two cameras
// named door: yaml would keep the last silently), naming both lines.
func checkDuplicates(file string, n *yaml.Node, prefix string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		key := join(prefix, k.Value)
		if first, ok := seen[k.Value]; ok {
			what := "key"
			if prefix == "cameras" {
				what = "camera name"
			}
			return fmt.Errorf("%s:%d: %s: duplicate %s (first at line %d): remove or rename one of them", file, k.Line, key, what, first)
		}
		seen[k.Value] = k.Line
		if err := checkDuplicates(file, n.Content[i+1], key); err != nil {
			return err
		}
	}
	return nil
}

func inKey(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " in " + prefix
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "." + b
}

func indexLines(n *yaml.Node, prefix string, out map[string]int) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := join(prefix, n.Content[i].Value)
		out[k] = n.Content[i].Line
		indexLines(n.Content[i+1], k, out)
	}
}

var lineRef = regexp.MustCompile(`^line (\d+): `)

// locate turns "line N: msg" into "file:N: key: msg", the form every other
// config error has.
func locate(file, key string, err error) error {
	msg := err.Error()
	where := file
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		where += ":" + m[1]
		msg = msg[len(m[0]):]
	}
	if key != "" && !strings.HasPrefix(msg, key+".") && !strings.HasPrefix(msg, key+":") {
		msg = key + ": " + msg
	}
	return fmt.Errorf("%s: %s", where, msg)
}

var yamlLine = regexp.MustCompile(`^yaml: (unmarshal errors:\n\s*)?`)

func cleanYAMLErr(err error) string {
	s := yamlLine.ReplaceAllString(err.Error(), "")
	return strings.TrimSpace(strings.ReplaceAll(s, "\n  ", "; "))
}

// at prefixes an error with file:line of key (or of its closest parent).
func (c *Config) at(key string, format string, a ...any) error {
	// A camera's value that came from defaults: is fixed there.
	if parts := strings.SplitN(key, ".", 3); len(parts) == 3 && parts[0] == "cameras" {
		if _, set := c.lines[key]; !set {
			if l, ok := c.lines["defaults."+parts[2]]; ok {
				return fmt.Errorf("%s:%d: %s: %s (set in defaults.%s)", c.path, l, key, fmt.Sprintf(format, a...), parts[2])
			}
		}
	}
	k := key
	for k != "" {
		if l, ok := c.lines[k]; ok {
			return fmt.Errorf("%s:%d: %s: %s", c.path, l, key, fmt.Sprintf(format, a...))
		}
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			k = k[:i]
		} else {
			k = ""
		}
	}
	return fmt.Errorf("%s: %s: %s", c.path, key, fmt.Sprintf(format, a...))
}
