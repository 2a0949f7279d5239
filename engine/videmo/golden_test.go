package videmo

// Readers for the Qwen2.5-VL golden reference in testdata/qwen2_5_vl/
// (transformers 4.49 + qwen-vl-utils 0.0.10 as ms-swift runs them; its
// README describes every file): NumPy .npy arrays, the cases' case.json,
// prompts.json and derive.synth_frames, the integer formula every golden
// input frame comes from. Shared by the preprocessing tests and the model
// tests.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// goldenBase is the reference folder; the file names inside case.json
// ("golden/preprocess/<case>/...") are relative to it.
const goldenBase = "testdata/qwen2_5_vl"

// goldenPath is a file of the reference, rel as case.json writes it
// (relative to testdata/qwen2_5_vl/); a missing file fails the test.
func goldenPath(t testing.TB, rel string) string {
	t.Helper()
	return testenv.Path(t, filepath.Join(goldenBase, rel))
}

// readJSON decodes the reference file rel into v.
func readJSON(t testing.TB, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(goldenPath(t, rel))
	if err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", rel, err)
	}
}

var npyHeader = regexp.MustCompile(`^\{'descr': '([<|][a-z][0-9])', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \}\s*$`)

// readNpy reads a NumPy format 1.0 file (C order, little endian) and
// returns its shape and data: []float32 for '<f4', []int64 for '<i8',
// []int32 for '<i4', []uint8 for '|u1'. Anything else fails the test.
func readNpy(t testing.TB, path string) (shape []int, data any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	shape, data, err = parseNpy(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return shape, data
}

func parseNpy(b []byte) ([]int, any, error) {
	if len(b) < 10 || !bytes.Equal(b[:6], []byte("\x93NUMPY")) || b[6] != 1 || b[7] != 0 {
		return nil, nil, fmt.Errorf("not a NumPy format 1.0 file")
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if 10+hl > len(b) {
		return nil, nil, fmt.Errorf("header of %d bytes past the end of the file", hl)
	}
	m := npyHeader.FindStringSubmatch(string(b[10 : 10+hl]))
	if m == nil {
		return nil, nil, fmt.Errorf("unsupported header %q", b[10:10+hl])
	}
	var shape []int
	n := 1
	for _, f := range strings.Split(m[2], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil {
			return nil, nil, fmt.Errorf("shape %q: %w", m[2], err)
		}
		shape = append(shape, d)
		n *= d
	}
	raw := b[10+hl:]
	size := map[string]int{"<f4": 4, "<i8": 8, "<i4": 4, "|u1": 1}[m[1]]
	if size == 0 {
		return nil, nil, fmt.Errorf("unsupported dtype %s", m[1])
	}
	if len(raw) != n*size {
		return nil, nil, fmt.Errorf("%d data bytes for shape %v of %s", len(raw), shape, m[1])
	}
	switch m[1] {
	case "<f4":
		d := make([]float32, n)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return shape, d, nil
	case "<i8":
		d := make([]int64, n)
		for i := range d {
			d[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return shape, d, nil
	case "<i4":
		d := make([]int32, n)
		for i := range d {
			d[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return shape, d, nil
	default:
		return shape, append([]uint8(nil), raw...), nil
	}
}

// npyF32 reads a '<f4' file.
func npyF32(t testing.TB, path string) ([]int, []float32) {
	t.Helper()
	shape, d := readNpy(t, path)
	v, ok := d.([]float32)
	if !ok {
		t.Fatalf("%s: %T, want float32", path, d)
	}
	return shape, v
}

// npyInt reads an integer file ('<i8' or '<i4') as int64s.
func npyInt(t testing.TB, path string) ([]int, []int64) {
	t.Helper()
	shape, d := readNpy(t, path)
	switch v := d.(type) {
	case []int64:
		return shape, v
	case []int32:
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(x)
		}
		return shape, out
	}
	t.Fatalf("%s: %T, want an integer array", path, d)
	return nil, nil
}

// npyU8 reads a '|u1' file.
func npyU8(t testing.TB, path string) ([]int, []uint8) {
	t.Helper()
	shape, d := readNpy(t, path)
	v, ok := d.([]uint8)
	if !ok {
		t.Fatalf("%s: %T, want uint8", path, d)
	}
	return shape, v
}

// goldenFrames is a case's "frames" entry: derive.synth_frames(T, H, W,
// seed), uint8 [T, H, W, 3] RGB.
type goldenFrames struct {
	T, H, W  int
	Seed     uint32  `json:"seed"`
	SHA256U8 string  `json:"sha256_u8"`
	Npy      *string `json:"npy"` // stored copy (small cases), relative to goldenBase
	FPS      float64 `json:"fps"` // the video's rate (preprocessing cases)
}

// synthFrames is derive.synth_frames: uint8 [T, H, W, 3] RGB from a uint32
// hash (multiplies and adds wrap mod 2^32) for noise in [-16, 15] on moving
// gradients, plus a moving 235/45/95 square of side min(H, W)/3.
func synthFrames(T, H, W int, seed uint32) []uint8 {
	out := make([]uint8, T*H*W*3)
	s := min(H, W) / 3
	sq := [3]int{235, 45, 95}
	for t := range T {
		y0 := (11 * t * H / 64) % (H - s)
		x0 := (13 * t * W / 64) % (W - s)
		for y := range H {
			for x := range W {
				inside := y >= y0 && y < y0+s && x >= x0 && x < x0+s
				base := [3]int{
					(256*x/W + 12*t) % 256,
					(256*y/H + 20*t) % 256,
					(128*(x+y)/max(H, W) + 28*t) % 256,
				}
				for c := range 3 {
					h := seed*0x9E3779B1 + uint32(t)*0x85EBCA77 + uint32(y)*0xC2B2AE3D + uint32(x)*0x27D4EB2F + uint32(c)*0x165667B1
					h ^= h >> 15
					h *= 0x2C1B3C6D
					h ^= h >> 12
					h *= 0x297A2D39
					h ^= h >> 15
					noise := int(h>>27) - 16
					b := base[c]
					if inside {
						b = sq[c]
					}
					out[((t*H+y)*W+x)*3+c] = uint8(min(max(b+noise, 0), 255))
				}
			}
		}
	}
	return out
}

// frames regenerates the case's frames and checks them against sha256_u8
// (and the stored copy, when there is one).
func (f goldenFrames) frames(t testing.TB) []uint8 {
	t.Helper()
	rgb := synthFrames(f.T, f.H, f.W, f.Seed)
	if got := sha256Hex(rgb); got != f.SHA256U8 {
		t.Fatalf("synth_frames(%d, %d, %d, %d): sha256 %s, the reference's %s", f.T, f.H, f.W, f.Seed, got, f.SHA256U8)
	}
	if f.Npy != nil {
		shape, stored := npyU8(t, goldenPath(t, *f.Npy))
		if fmt.Sprint(shape) != fmt.Sprint([]int{f.T, f.H, f.W, 3}) || !bytes.Equal(stored, rgb) {
			t.Fatalf("%s (shape %v) differs from synth_frames", *f.Npy, shape)
		}
	}
	return rgb
}

// crops splits RGB [T, H, W, 3] frames into BGR crops (facetrack.Crop's
// channel order).
func crops(rgb []uint8, T, H, W int) []facetrack.Crop {
	out := make([]facetrack.Crop, T)
	for t := range T {
		c := facetrack.Crop{W: W, H: H, Pix: make([]byte, H*W*3)}
		src := rgb[t*H*W*3 : (t+1)*H*W*3]
		for i := 0; i < H*W; i++ {
			c.Pix[3*i], c.Pix[3*i+1], c.Pix[3*i+2] = src[3*i+2], src[3*i+1], src[3*i]
		}
		out[t] = c
	}
	return out
}

// cropWindow is a window of the crops sampled at fps: timestamps i/fps
// seconds apart, FPS set to the same rate.
func cropWindow(cs []facetrack.Crop, fps float64) window.Window {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	w := window.Window{Camera: "golden", TrackID: 1, FPS: fps, Start: t0}
	for i, c := range cs {
		at := t0.Add(time.Duration(math.Round(float64(i) / fps * float64(time.Second))))
		w.Samples = append(w.Samples, window.Sample{FrameSeq: uint64(i), Time: at, Score: 1, Crop: c})
		w.End = at
	}
	return w
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sha256F32 is the sha256 of float32 values as little-endian bytes
// (the reference's sha256_f32_le).
func sha256F32(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return sha256Hex(b)
}

// goldenPositions are a prompt's reference ids and M-RoPE positions.
type goldenPositions struct {
	PositionIDs [3][]int64 `json:"position_ids"`
	RopeDelta   int64      `json:"rope_delta"`
}

// goldenPrompt is one prompt of a case.
type goldenPrompt struct {
	InputIDs   []int `json:"input_ids"`
	PromptLen  int   `json:"prompt_len"`
	VideoStart int   `json:"video_start"`
	VideoEnd   int   `json:"video_end"`
	goldenPositions
	// WithSampleFPS: the positions for second_per_grid_t =
	// temporal_patch_size / sample_fps, where that differs from 1.0.
	WithSampleFPS *struct {
		SecondPerGridT float64 `json:"second_per_grid_t"`
		goldenPositions
	} `json:"with_second_per_grid_t_from_sample_fps"`
}

// goldenPixels describes a pixel_values array of the reference.
type goldenPixels struct {
	Shape   []int   `json:"shape"`
	SHA256  string  `json:"sha256_f32_le"`
	Sum     float64 `json:"sum"`
	SumSq   float64 `json:"sum_sq"`
	Samples struct {
		Count         int    `json:"count"`
		IndexFile     string `json:"index_file"`
		ValueFile     string `json:"value_file"`
		NearHalfFlags string `json:"near_half_flags_file"` // preprocessing cases only
	} `json:"samples"`
}

// preprocessCase is golden/preprocess/<case>/case.json.
type preprocessCase struct {
	Name   string       `json:"-"`
	Frames goldenFrames `json:"frames"`
	Qwen   struct {
		NFrames    int     `json:"nframes"`
		Indices    []int   `json:"sampled_indices"`
		SampleFPS  float64 `json:"sample_fps"`
		MinPixels  int     `json:"min_pixels"`
		MaxPixels  int     `json:"max_pixels"`
		ResizedHW  [2]int  `json:"resized_hw"`
		ResizedSHA string  `json:"resized_u8_sha256_THWC"`
		ResizedSum int64   `json:"resized_u8_sum"`
		NearHalf   struct {
			Count     int    `json:"count"`
			IndexFile string `json:"index_file"` // flat indices into the resized [n, h, w, 3] RGB frames
			ValueFile string `json:"value_file"`
		} `json:"near_half"`
	} `json:"qwen_vl_utils"`
	Processor struct {
		Grid        [3]int       `json:"video_grid_thw"`
		VideoTokens int          `json:"video_tokens"`
		Pixels      goldenPixels `json:"pixel_values_videos"`
	} `json:"image_processor"`
	SecondPerGridTs        []float64               `json:"second_per_grid_ts"`
	SecondPerGridTFromSFPS float64                 `json:"second_per_grid_t_from_sample_fps"`
	Prompts                map[string]goldenPrompt `json:"prompts"`
}

// preprocessCases lists golden/preprocess/.
func preprocessCases(t testing.TB) []string { return goldenCases(t, "golden/preprocess") }

// goldenCases lists the case folders under rel.
func goldenCases(t testing.TB, rel string) []string {
	t.Helper()
	es, err := os.ReadDir(goldenPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s has no cases", rel)
	}
	return names
}

// loadPreprocessCase reads golden/preprocess/<name>/case.json.
func loadPreprocessCase(t testing.TB, name string) *preprocessCase {
	t.Helper()
	var c preprocessCase
	readJSON(t, filepath.Join("golden/preprocess", name, "case.json"), &c)
	c.Name = name
	return &c
}

// modelCase is the part of golden/model/<case>/case.json the
// preprocessing needs (the model outputs are for the model tests).
type modelCase struct {
	Name      string       `json:"-"`
	Frames    goldenFrames `json:"frames"`
	Processor struct {
		Grid   [3]int       `json:"video_grid_thw"`
		Pixels goldenPixels `json:"pixel_values_videos"`
	} `json:"image_processor"`
	SecondPerGridTs []float64               `json:"second_per_grid_ts"`
	Prompts         map[string]goldenPrompt `json:"prompts"`
}

// modelCases lists golden/model/.
func modelCases(t testing.TB) []string { return goldenCases(t, "golden/model") }

// loadModelCase reads golden/model/<name>/case.json.
func loadModelCase(t testing.TB, name string) *modelCase {
	t.Helper()
	var c modelCase
	readJSON(t, filepath.Join("golden/model", name, "case.json"), &c)
	c.Name = name
	return &c
}

// goldenPromptSet is golden/prompts.json: the system prompt, the special
// tokens and the questions' texts by prompt name.
type goldenPromptSet struct {
	System  string   `json:"system"`
	Tokens  TokenIDs `json:"special_tokens"`
	Prompts map[string]struct {
		Question string `json:"question"`
	} `json:"prompts"`
	OptionLetterIDs []int `json:"option_letter_ids"`
	FixedLogitIDs   []int `json:"fixed_logit_ids"`
}

func loadGoldenPrompts(t testing.TB) *goldenPromptSet {
	t.Helper()
	var p goldenPromptSet
	readJSON(t, "golden/prompts.json", &p)
	if p.System == "" || len(p.Prompts) == 0 || p.Tokens.VideoPad == 0 {
		t.Fatalf("golden/prompts.json: no system prompt, questions or special tokens")
	}
	return &p
}
