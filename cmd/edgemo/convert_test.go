package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/internal/testenv"
)

// refCheckpoint is the Qwen2.5-VL reference checkpoint set-up derives
// (deps/qwen2_5_vl-ref/checkpoint: config.json, model.safetensors,
// tokenizer.json, ...), copied into a fresh folder the test may break.
func refCheckpoint(t *testing.T) string {
	t.Helper()
	src := testenv.Path(t, "deps/qwen2_5_vl-ref/checkpoint")
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// readSafetensors parses a safetensors file: its tensors and data section.
func readSafetensors(t *testing.T, path string) (map[string]stEntry, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]stEntry{}
	for k, v := range raw {
		if k == "__metadata__" {
			continue
		}
		var e stEntry
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		out[k] = e
	}
	return out, b[8+n:]
}

func writeSafetensors(t *testing.T, path string, keys []string, ents map[string]stEntry, data []byte) {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var body []byte
	for _, k := range keys {
		e := ents[k]
		chunk := data[e.Offsets[0]:e.Offsets[1]]
		hdr[k] = stEntry{DType: e.DType, Shape: e.Shape, Offsets: [2]int64{int64(len(body)), int64(len(body) + len(chunk))}}
		body = append(body, chunk...)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), body...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// shard splits dir's model.safetensors into n shards with the hub's names
// and index, as a large checkpoint is served.
func shard(t *testing.T, dir string, n int) []string {
	t.Helper()
	ents, data := readSafetensors(t, filepath.Join(dir, "model.safetensors"))
	keys := make([]string, 0, len(ents))
	for k := range ents {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wm := map[string]string{}
	var names []string
	per := (len(keys) + n - 1) / n
	for i := range n {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n)
		part := keys[i*per : min(len(keys), (i+1)*per)]
		writeSafetensors(t, filepath.Join(dir, name), part, ents, data)
		for _, k := range part {
			wm[k] = name
		}
		names = append(names, name)
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]int{"total_size": len(data)}, "weight_map": wm})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	return names
}

func loadManifest(t *testing.T, path string) *videmo.Manifest {
	t.Helper()
	m, err := videmo.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A sharded checkpoint converts to the same graphs as the single file it
// was split from, and the runner loads them (convert's --check).
func TestConvertVidEmoShardedEqualsSingle(t *testing.T) {
	single, sharded := refCheckpoint(t), refCheckpoint(t)
	shard(t, sharded, 3)
	outA, outB := t.TempDir(), t.TempDir()
	for _, c := range [][2]string{{single, outA}, {sharded, outB}} {
		code, stdout, stderr := edgemo(t, "convert", "videmo", "--from", c[0], "--out", c[1], "--ort-lib", testenv.ORTLib(t))
		if code != 0 {
			t.Fatalf("convert %s: exit %d\n%s\n%s", c[0], code, stdout, stderr)
		}
		if !strings.Contains(stdout, "check: the runner opened videmo.manifest.json") {
			t.Fatalf("convert did not check the result:\n%s", stdout)
		}
	}
	a, b := loadManifest(t, filepath.Join(outA, "videmo.manifest.json")), loadManifest(t, filepath.Join(outB, "videmo.manifest.json"))
	if len(a.Files) != 7 {
		t.Fatalf("want 3 graphs + 3 data files + tokenizer, got %+v", a.Files)
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			t.Errorf("sharded and single-file conversions differ: %+v vs %+v", a.Files[i], b.Files[i])
		}
	}
	if a.Dims.Layers != 2 || a.Dims.Hidden != 64 || a.Dims.Vocab != 151936 || a.Vision.WindowSize != 112 {
		t.Errorf("manifest dims not read from config.json: %+v %+v", a.Dims, a.Vision)
	}
}

// A bad checkpoint is refused with one line that names the file and the
// fix, exit status 1, and nothing half-written is presented as a model.
func TestConvertVidEmoBadCheckpoints(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"missing shard", func(t *testing.T, dir string) {
			names := shard(t, dir, 2)
			os.Remove(filepath.Join(dir, names[1]))
		}, []string{"model-00002-of-00002.safetensors: missing", "download every shard"}},
		{"truncated safetensors", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-1000)
		}, []string{"model.safetensors: truncated", "download it again"}},
		{"wrong model_type", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["model_type"] = "llama" })
		}, []string{"config.json: model_type is 'llama'", "qwen2_5_vl"}},
		{"mismatched dimensions", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["intermediate_size"] = 256 })
		}, []string{"model.layers.0.mlp.gate_proj.weight has shape [128, 64], config.json implies [256, 64]", "do not belong together"}},
		{"no tokenizer", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "tokenizer.json"))
		}, []string{"tokenizer.json: missing", "--tokenizer"}},
		{"not a checkpoint", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, []string{"config.json: missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := refCheckpoint(t)
			c.break_(t, dir)
			out := t.TempDir()
			code, stdout, stderr := edgemo(t, "convert", "videmo", "--from", dir, "--out", out)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "Traceback") {
				t.Errorf("a traceback instead of an error:\n%s", stderr)
			}
			if _, err := os.Stat(filepath.Join(out, "videmo.manifest.json")); err == nil {
				t.Error("a manifest was written for a refused checkpoint")
			}
		})
	}
}

func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, _ = json.Marshal(c)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
