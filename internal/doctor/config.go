package doctor

import (
	"fmt"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/parts"
)

// ConfigModels loads every manifest and model file cfg names, with the
// loaders the daemon uses (sha256s included), without starting ONNX
// Runtime: models.emotion, models.videmo and its tokenizer, the face models
// of the enabled cameras' detectors and of engine.heads, and Haar cascades.
// Each check carries the config key it came from. A head that would be
// disabled (engine.optional_heads) is a warning, not a failure.
func ConfigModels(cfg *config.Config) []Check {
	var cs []Check
	var o parts.Options // the daemon's face models live beside the default manifest
	manifest := func(key, path, task, fix string, status Status) {
		m, err := engine.LoadManifest(path)
		switch {
		case err != nil:
			cs = append(cs, Check{Name: "model " + path, Status: status, Detail: err.Error(), Fix: fix, Key: key})
		case m.Task != task:
			cs = append(cs, Check{Name: "model " + path, Status: status, Detail: fmt.Sprintf("%s is a %q model, not %q", path, m.Task, task), Fix: fix, Key: key})
		default:
			cs = append(cs, Check{Name: "model " + m.Name, Status: OK, Detail: m.Ref() + " " + m.ModelPath(), Key: key})
		}
	}

	manifest("models.emotion", parts.EmotionManifest(cfg.Models.Emotion), registry.TaskEmotion,
		"set models.emotion to "+registry.EmotionModels.OrNames()+" or the emotion head's manifest (models/emotion.manifest.json), or run scripts/setup.sh to convert it", Fail)
	// The int8 variants models.precision may pick (which it does is only
	// known once ORT is loaded: doctor's precision check says). Under auto a
	// missing one leaves float32, so it is a warning.
	int8Status := Warn
	if cfg.Models.Precision == registry.PrecisionInt8 {
		int8Status = Fail
	}
	variant := func(key, path string, part registry.Part) {
		if cfg.Models.Precision == registry.PrecisionFP32 {
			return
		}
		if q := parts.WithPrecision(path, part, engine.Precision{Int8: true}, nil); q != path {
			manifest(key, q, part.Task, "run scripts/setup.sh (scripts/models.sh makes it), or set models.precision: fp32", int8Status)
		}
	}
	if _, named := registry.EmotionModels.Get(cfg.Models.Emotion); !named {
		emotion, _ := registry.EmotionModels.Get(registry.EmotionModels.Default())
		variant("models.precision", parts.EmotionManifest(cfg.Models.Emotion), emotion)
	}

	if p, r := cfg.Models.VidEmo, cfg.Models.VidEmoRemote; p != "" && r.URL != "" {
		// remote: the manifest is the served model's plan; its weights live on the server
		if m, err := videmo.LoadPlan(p); err != nil {
			cs = append(cs, Check{Name: "model " + p, Status: Fail, Detail: err.Error(), Key: "models.videmo",
				Fix: "point models.videmo at the served model's videmo.manifest.json (its question plan)"})
		} else {
			cs = append(cs, Check{Name: "model " + m.Name + " (plan)", Status: OK, Detail: p, Key: "models.videmo"})
		}
	} else if p != "" {
		if m, err := videmo.LoadManifest(p); err != nil {
			cs = append(cs, Check{Name: "model " + p, Status: Fail, Detail: err.Error(), Key: "models.videmo",
				Fix: "point models.videmo at a VidEmo export's videmo.manifest.json (edgemo convert videmo), or remove it for the fast head alone"})
		} else {
			cs = append(cs, Check{Name: "model " + m.Name, Status: OK, Detail: p, Key: "models.videmo"})
			if tp, err := parts.FindTokenizer(cfg.Models.Tokenizer, p); err != nil {
				cs = append(cs, Check{Name: "tokenizer", Status: Fail, Detail: err.Error(), Key: "models.tokenizer",
					Fix: "set models.tokenizer to the model's tokenizer.json"})
			} else {
				cs = append(cs, Check{Name: "tokenizer", Status: OK, Detail: tp, Key: "models.tokenizer"})
			}
		}
	}

	heads := registry.Heads.Defaults()
	if cfg.Engine.Heads != nil {
		heads = *cfg.Engine.Heads
	}
	headStatus := Fail
	if cfg.Engine.OptionalHeads {
		headStatus = Warn
	}
	for _, h := range heads {
		part, ok := registry.Heads.Get(h)
		if !ok || part.Manifest == "" {
			continue // unknown: config validation has named it; or a head with no model
		}
		manifest("engine.heads", o.FaceManifest(part.Manifest), part.Task,
			fmt.Sprintf("run scripts/setup.sh (scripts/models.sh converts it), or leave %s out of engine.heads (or set engine.optional_heads)", h), headStatus)
		variant("models.precision", o.FaceManifest(part.Manifest), part)
	}

	seen := map[string]bool{}
	for _, name := range cfg.CameraNames() {
		cam := cfg.Cameras[name]
		key := "cameras." + name + ".detector"
		part, ok := registry.Detectors.Get(cam.Detector)
		if !ok {
			continue
		}
		if part.Manifest == "" { // haar: its cascade, per camera
			h, err := facetrack.NewHaar(facetrack.HaarConfig{Cascade: cam.Cascade, MaxWidth: cam.DetectWidth})
			if err != nil {
				cs = append(cs, Check{Name: "camera " + name + " haar", Status: Fail, Detail: err.Error(), Key: "cameras." + name + ".cascade",
					Fix: "set cameras." + name + ".cascade to a Haar cascade XML (apt-get install opencv-data), or use detector " + registry.Detectors.Default()})
			} else {
				cs = append(cs, Check{Name: "camera " + name + " haar", Status: OK, Detail: h.Config().Cascade, Key: key})
				h.Close()
			}
			continue
		}
		if seen[part.Name] {
			continue
		}
		seen[part.Name] = true
		manifest(key, o.FaceManifest(part.Manifest), part.Task,
			"run scripts/setup.sh (scripts/models.sh converts it), or set the camera's detector to haar", Fail)
	}
	return cs
}
