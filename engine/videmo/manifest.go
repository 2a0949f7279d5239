package videmo

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
)

// Manifest describes a VidEmo (Qwen2.5-VL) model set exported with the
// onnxruntime-genai qwen2_5_vl contract: three ONNX graphs (vision,
// embedding, decoder), the text model's dimensions, special tokens,
// preprocessing, generation defaults and the question plan that turns the
// model's answers into a tree. Written by scripts/convert_videmo.py
// (`edgemo convert videmo`).
type Manifest struct {
	Name       string            `json:"name"`
	Version    string            `json:"version"`
	Task       string            `json:"task"`
	Engine     string            `json:"engine"` // tree source.engine, e.g. "videmo-3b-int4"
	Licence    string            `json:"licence"`
	Source     map[string]any    `json:"source"`
	Files      []File            `json:"files"`
	Dims       Dims              `json:"dims"`
	Tokens     SpecialTokens     `json:"tokens"`
	EOS        []int             `json:"eos"`
	Preprocess PreprocessConfig  `json:"preprocess"`
	Vision     VisionConfig      `json:"vision"` // vision tower geometry for the grid-dependent inputs; zero fields: defaults
	IO         IOSpec            `json:"io"`
	System     string            `json:"system"`
	Generation GenConfig         `json:"generation"`
	Questions  []Question        `json:"questions"`
	Cues       []CuePhrase       `json:"cues"`
	Category   map[string]string `json:"emotion_category"` // expression label -> emotion noun
	// LetterMassThreshold: a closed-set answer is read from its option
	// letters' distribution when the letters carry at least this much of
	// the model's probability at the first answer position; below it, from
	// the model's own text (Runner.Ask). Absent: DefaultLetterMassThreshold.
	LetterMassThreshold *float64 `json:"letter_mass_threshold,omitempty"`

	// Path is the manifest file it was loaded from.
	Path string `json:"-"`
}

// DefaultLetterMassThreshold is one half. Below it the model would more
// likely write something other than an option letter first, so the softmax
// over the letters renormalises a minority of its belief: the letters'
// arg max is then not what the model says, only what it says among letters.
// At or above it, a letter is the model's most likely first token class and
// the letter distribution is its answer.
const DefaultLetterMassThreshold = 0.5

// LetterMassMin is the manifest's letter_mass_threshold, or the default.
func (m *Manifest) LetterMassMin() float64 {
	if m.LetterMassThreshold != nil {
		return *m.LetterMassThreshold
	}
	return DefaultLetterMassThreshold
}

// File is one file of the model set; Role is vision, embedding, decoder, or
// "<role>.data" for a graph's external weights. Path is relative to the
// manifest.
type File struct {
	Role   string `json:"role"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Dims are the text model's dimensions (config.json of the language model).
type Dims struct {
	Hidden       int     `json:"hidden"`
	Layers       int     `json:"layers"`
	Heads        int     `json:"heads"`
	KVHeads      int     `json:"kv_heads"`
	HeadDim      int     `json:"head_dim"`
	Intermediate int     `json:"intermediate"`
	Vocab        int     `json:"vocab"`
	MRopeSection []int   `json:"mrope_section"`
	RopeTheta    float64 `json:"rope_theta"`
}

// SpecialTokens are Qwen2's special token ids.
type SpecialTokens struct {
	EndOfText   int `json:"endoftext"`
	ImStart     int `json:"im_start"`
	ImEnd       int `json:"im_end"`
	VisionStart int `json:"vision_start"`
	VisionEnd   int `json:"vision_end"`
	VisionPad   int `json:"vision_pad"`
	ImagePad    int `json:"image_pad"`
	VideoPad    int `json:"video_pad"`
}

// TokenIDs returns the subset the prompt template and RopeIndex use.
func (s SpecialTokens) TokenIDs() TokenIDs {
	return TokenIDs{ImStart: s.ImStart, ImEnd: s.ImEnd, VisionStart: s.VisionStart, VisionEnd: s.VisionEnd, VideoPad: s.VideoPad}
}

// IOSpec names the graphs' inputs and outputs. Decoder names with %d are
// per layer.
type IOSpec struct {
	Vision    GraphIO   `json:"vision"`
	Embedding GraphIO   `json:"embedding"`
	Decoder   DecoderIO `json:"decoder"`
}

// GraphIO lists a graph's inputs and outputs in the contract's order
// (vision: pixel_values, image_grid_thw -> image_features; embedding:
// input_ids, image_features -> inputs_embeds).
type GraphIO struct {
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`
}

// DecoderIO names the text decoder's inputs and outputs.
type DecoderIO struct {
	InputsEmbeds  string `json:"inputs_embeds"`
	AttentionMask string `json:"attention_mask"`
	PositionIDs   string `json:"position_ids"`
	PastKey       string `json:"past_key"`   // "past_key_values.%d.key"
	PastValue     string `json:"past_value"` // "past_key_values.%d.value"
	Logits        string `json:"logits"`
	PresentKey    string `json:"present_key"`   // "present.%d.key"
	PresentValue  string `json:"present_value"` // "present.%d.value"
}

// GenConfig is the sampling configuration (HF generation_config names).
// TopK 1 (or Temperature 0) is greedy decoding.
type GenConfig struct {
	Temperature       float64 `json:"temperature"`
	TopK              int     `json:"top_k"`
	TopP              float64 `json:"top_p"`
	RepetitionPenalty float64 `json:"repetition_penalty"`
	Seed              uint64  `json:"seed,omitempty"`
}

// Greedy reports whether sampling reduces to arg max.
func (g GenConfig) Greedy() bool { return g.TopK == 1 || g.Temperature <= 0 }

// Question is one entry of the question plan.
//
// Kind "choice": a closed-set question asked as Prompt, the lettered
// options one per line ("A. happy"), then Instruction; answered by the
// logits of the option letters at the first answer position (or, when the
// letters carry less than letter_mass_threshold, by the model's own text:
// Runner.Ask). Target says
// where the distribution goes: "expression" (expression label/scores and
// the emotion level via emotion_category), "attribute" (Attribute "gender"
// fills attributes.gender, any other name attributes.other), "cue" (an
// action unit: P(Yes) is the intensity of cue Cue/AU), "mikels" (the
// distribution is emotion.mikels; the options are Mikels' eight,
// tree.MikelsCategories, each once).
//
// Kind "caption": free text of at most MaxNewTokens tokens; Target
// "rationale" puts it in emotion.rationale and matches it against the cue
// phrases.
type Question struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	Target       string   `json:"target"`
	Prompt       string   `json:"prompt"`
	Instruction  string   `json:"instruction,omitempty"`
	Options      []Option `json:"options,omitempty"`
	Attribute    string   `json:"attribute,omitempty"`
	AU           string   `json:"au,omitempty"`
	Cue          string   `json:"cue,omitempty"`
	Yes          string   `json:"yes,omitempty"`
	MaxNewTokens int      `json:"max_new_tokens,omitempty"`
}

// Option is one lettered answer of a choice question.
type Option struct {
	Letter string `json:"letter"`
	Label  string `json:"label"`
}

// Text is the user's question as the model sees it (after the video).
func (q *Question) Text() string {
	if q.Kind != "choice" {
		return q.Prompt
	}
	var b strings.Builder
	b.WriteString(q.Prompt)
	for _, o := range q.Options {
		b.WriteString("\n" + o.Letter + ". " + o.Label)
	}
	if q.Instruction != "" {
		b.WriteString("\n" + q.Instruction)
	}
	return b.String()
}

// CuePhrase maps a lower-case substring of the caption to a facial cue.
type CuePhrase struct {
	Phrase string `json:"phrase"`
	Name   string `json:"name"`
	AU     string `json:"au"`
}

// LoadManifest reads and validates a VidEmo manifest and checks every file's
// sha256. Errors name the file and the fix.
func LoadManifest(path string) (*Manifest, error) {
	m := Manifest{Path: path}
	if err := engine.LoadManifestFile(path, &m, "run scripts/models.sh (the test model set) or convert a checkpoint with `edgemo convert videmo`", m.validate, m.Verify); err != nil {
		return nil, err
	}
	return &m, nil
}

// LoadPlan reads and validates a VidEmo manifest without its model files:
// the remote engine needs only its question plan, prompt and preprocessing
// (the weights live on the server).
func LoadPlan(path string) (*Manifest, error) {
	m := Manifest{Path: path}
	if err := engine.LoadManifestFile(path, &m, "point models.videmo at the served model's videmo.manifest.json (its question plan; the weights may be absent)", m.validate, func() error { return nil }); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	var is engine.Issues
	bad := is.Addf
	is.Name(m.Name)
	if m.Engine == "" {
		bad("engine is empty")
	}
	roles := map[string]bool{}
	for i, f := range m.Files {
		is.File(i, f.Path, f.SHA256)
		roles[f.Role] = true
	}
	for _, r := range []string{"vision", "embedding", "decoder"} {
		if !roles[r] {
			bad("files has no %q graph", r)
		}
	}
	d := m.Dims
	if d.Hidden <= 0 || d.Layers <= 0 || d.Heads <= 0 || d.KVHeads <= 0 || d.HeadDim <= 0 || d.Vocab <= 0 {
		bad("dims: hidden, layers, heads, kv_heads, head_dim and vocab must be > 0, got %+v", d)
	} else if d.Heads%d.KVHeads != 0 {
		bad("dims: heads %d not a multiple of kv_heads %d", d.Heads, d.KVHeads)
	}
	sum := 0
	for _, s := range d.MRopeSection {
		sum += s
	}
	if len(d.MRopeSection) != 3 || sum*2 != d.HeadDim {
		bad("dims.mrope_section %v must be 3 sections summing to head_dim/2 = %d", d.MRopeSection, d.HeadDim/2)
	}
	t := m.Tokens
	for name, id := range map[string]int{"im_start": t.ImStart, "im_end": t.ImEnd, "vision_start": t.VisionStart, "vision_end": t.VisionEnd, "video_pad": t.VideoPad} {
		if id <= 0 || (d.Vocab > 0 && id >= d.Vocab) {
			bad("tokens.%s = %d is outside the vocabulary (%d)", name, id, d.Vocab)
		}
	}
	if len(m.EOS) == 0 {
		bad("eos is empty")
	}
	if err := m.Preprocess.Validate(); err != nil {
		bad("preprocess: %v", err)
	}
	io := m.IO
	if len(io.Vision.Inputs) < 1 || io.Vision.Inputs[0] != "pixel_values" || len(io.Vision.Outputs) != 1 {
		bad("io.vision must list pixel_values first, then the grid inputs the graph takes (image_grid_thw, or vision_pos_ids and the attention groups), and 1 output")
	}
	if len(io.Embedding.Inputs) != 2 || len(io.Embedding.Outputs) != 1 {
		bad("io.embedding must list 2 inputs (input_ids, image_features) and 1 output")
	}
	dio := io.Decoder
	for n, v := range map[string]string{"inputs_embeds": dio.InputsEmbeds, "attention_mask": dio.AttentionMask, "position_ids": dio.PositionIDs, "logits": dio.Logits} {
		if v == "" {
			bad("io.decoder.%s is empty", n)
		}
	}
	for n, v := range map[string]string{"past_key": dio.PastKey, "past_value": dio.PastValue, "present_key": dio.PresentKey, "present_value": dio.PresentValue} {
		if strings.Count(v, "%d") != 1 {
			bad("io.decoder.%s %q must contain one %%d (the layer)", n, v)
		}
	}
	g := m.Generation
	if g.Temperature < 0 || g.TopK < 0 || g.TopP < 0 || g.TopP > 1 || g.RepetitionPenalty < 0 {
		bad("generation: bad values %+v", g)
	}
	if len(m.Questions) == 0 {
		bad("questions is empty")
	}
	ids := map[string]bool{}
	for i, q := range m.Questions {
		if q.ID == "" || ids[q.ID] {
			bad("questions[%d]: id %q empty or repeated", i, q.ID)
		}
		ids[q.ID] = true
		if q.Prompt == "" {
			bad("questions[%d] (%s): prompt is empty", i, q.ID)
		}
		switch q.Kind {
		case "choice":
			if len(q.Options) < 2 {
				bad("questions[%d] (%s): a choice needs >= 2 options", i, q.ID)
			}
			seen := map[string]bool{}
			for _, o := range q.Options {
				if o.Letter == "" || o.Label == "" || seen[o.Letter] {
					bad("questions[%d] (%s): option %+v has no letter/label or repeats a letter", i, q.ID, o)
				}
				seen[o.Letter] = true
			}
			switch q.Target {
			case "expression":
			case "attribute":
				if q.Attribute == "" {
					bad("questions[%d] (%s): target attribute needs attribute", i, q.ID)
				}
			case "mikels":
				if err := mikelsOptions(q.Options); err != "" {
					bad("questions[%d] (%s): %s", i, q.ID, err)
				}
			case "cue":
				if q.Cue == "" || q.Yes == "" {
					bad("questions[%d] (%s): target cue needs cue and yes", i, q.ID)
				}
				found := false
				for _, o := range q.Options {
					found = found || o.Label == q.Yes
				}
				if !found {
					bad("questions[%d] (%s): yes %q is not an option label", i, q.ID, q.Yes)
				}
			default:
				bad("questions[%d] (%s): choice target must be expression, attribute, cue or mikels, got %q", i, q.ID, q.Target)
			}
		case "caption":
			if q.Target != "rationale" {
				bad("questions[%d] (%s): caption target must be rationale, got %q", i, q.ID, q.Target)
			}
			if q.MaxNewTokens <= 0 {
				bad("questions[%d] (%s): caption needs max_new_tokens > 0", i, q.ID)
			}
		default:
			bad("questions[%d] (%s): kind must be choice or caption, got %q", i, q.ID, q.Kind)
		}
	}
	if th := m.LetterMassThreshold; th != nil && !(*th >= 0 && *th <= 1) {
		bad("letter_mass_threshold %g must be in [0, 1] (a probability; omit it for the default %g)", *th, DefaultLetterMassThreshold)
	}
	for i, c := range m.Cues {
		if c.Phrase == "" || c.Name == "" || c.Phrase != strings.ToLower(c.Phrase) {
			bad("cues[%d]: phrase must be non-empty lower case and name set, got %+v", i, c)
		}
	}
	return is.Err("VidEmo manifest")
}

// mikelsOptions says what is wrong with a mikels question's options ("" if
// nothing): they must be Mikels' eight categories, each once.
func mikelsOptions(opts []Option) string {
	seen := map[string]bool{}
	for _, o := range opts {
		if !slices.Contains(tree.MikelsCategories, o.Label) {
			return fmt.Sprintf("option %q is not one of Mikels' categories %v", o.Label, tree.MikelsCategories)
		}
		if seen[o.Label] {
			return fmt.Sprintf("option %q appears twice", o.Label)
		}
		seen[o.Label] = true
	}
	if len(seen) != len(tree.MikelsCategories) {
		return fmt.Sprintf("target mikels needs all %d of Mikels' categories %v as options, got %d", len(tree.MikelsCategories), tree.MikelsCategories, len(seen))
	}
	return ""
}

// FilePath returns the path of the file with the given role, or "".
func (m *Manifest) FilePath(role string) string {
	for _, f := range m.Files {
		if f.Role == role {
			return filepath.Join(filepath.Dir(m.Path), f.Path)
		}
	}
	return ""
}

// Verify checks that each file exists and has the listed sha256.
func (m *Manifest) Verify() error {
	for _, f := range m.Files {
		p := filepath.Join(filepath.Dir(m.Path), f.Path)
		if err := engine.CheckFile(p, f.SHA256, m.Path, "run scripts/models.sh"); err != nil {
			return fmt.Errorf("%s graph: %w", f.Role, err)
		}
	}
	return nil
}

// Ref is "<name>@<first 12 hex of the decoder's sha256>", the tree's
// source.model.
func (m *Manifest) Ref() string {
	for _, f := range m.Files {
		if f.Role == "decoder" {
			return m.Name + "@" + f.SHA256[:12]
		}
	}
	return m.Name
}
