package mqtt

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
)

// camState is what the sink knows about one camera's live tracks.
type camState struct {
	tracks map[int]*trackState
}

// trackState is one live track: its latest face box area and the emotion of
// its latest tree.
type trackState struct {
	area       float64
	label      string
	confidence float64
}

// Emotion is the payload of <prefix>/<camera>/emotion. TrackID is null and
// Label "none" when no live track has an emotion.
type Emotion struct {
	TrackID    *int    `json:"track_id"`
	Label      string  `json:"label"`
	Confidence float64 `json:"confidence"`
}

// camLocked returns the camera's state, creating it (and its discovery
// configs) on first sight.
func (s *Sink) camLocked(cam string) *camState {
	c := s.cams[cam]
	if c != nil {
		return c
	}
	c = &camState{tracks: map[int]*trackState{}}
	s.cams[cam] = c
	if s.cfg.HADiscovery {
		for _, d := range s.discovery(cam) {
			s.setLocked(d.topic, d.payload)
		}
		if !s.cfg.FaceImages {
			// Face images off: delete the camera entity an earlier run
			// with them on may have left (forgotten once acknowledged).
			s.setLocked(s.cameraDiscoveryTopic(cam), []byte{})
		}
	}
	return c
}

// treeLocked records t's box and emotion for the salience choice.
func (s *Sink) treeLocked(cam string, t *tree.Tree) {
	c := s.camLocked(cam)
	ts := c.tracks[t.TrackID]
	if ts == nil {
		ts = &trackState{}
		c.tracks[t.TrackID] = ts
	}
	if t.Face != nil {
		ts.area = t.Face.Box[2] * t.Face.Box[3]
	}
	ts.label, ts.confidence = "", 0
	switch {
	case t.Emotion != nil && t.Emotion.Label != "":
		ts.label, ts.confidence = t.Emotion.Label, t.Emotion.Confidence
	case t.Expression != nil && t.Expression.Label != "":
		ts.label, ts.confidence = t.Expression.Label, t.Expression.Confidence
	}
	s.emotionLocked(cam, c)
}

// trackLocked follows a track's box; an ended track leaves the choice.
func (s *Sink) trackLocked(cam string, ev publish.TrackEvent) {
	c := s.camLocked(cam)
	ts := c.tracks[ev.TrackID]
	if ev.Type == "end" {
		if ts != nil {
			delete(c.tracks, ev.TrackID)
			s.emotionLocked(cam, c)
		}
		return
	}
	if ts == nil {
		ts = &trackState{}
		c.tracks[ev.TrackID] = ts
	}
	ts.area = ev.Box[2] * ev.Box[3]
	s.emotionLocked(cam, c)
}

// emotionLocked picks the most salient face of the camera and sets the
// retained emotion topic when the choice or its label/confidence changed.
//
// Salience = face box area (px², latest track box or tree box) × the
// confidence of the track's latest emotion (emotion level, else expression
// level), over the camera's live tracks (a tree seen, no "end" event yet).
// Ties go to the lower track id. Nothing live: label "none".
func (s *Sink) emotionLocked(cam string, c *camState) {
	bestID, ok := salientLocked(c)
	best := c.tracks[bestID]
	if !ok {
		best = nil
	}
	e := Emotion{Label: "none"}
	if best != nil {
		id := bestID
		e = Emotion{TrackID: &id, Label: best.label, Confidence: math.Round(best.confidence*100) / 100}
	}
	topic := s.topic(cam, "emotion")
	if r := s.state[topic]; (r == nil || len(r.payload) == 0) && best == nil {
		return // nothing to clear yet
	}
	b, _ := json.Marshal(e)
	s.setLocked(topic, b)
}

// salientLocked is the camera's most salient live track (see
// emotionLocked); ok is false when no live track has an emotion.
func salientLocked(c *camState) (id int, ok bool) {
	bestSal := -1.0
	for tid, ts := range c.tracks {
		if ts.label == "" {
			continue
		}
		sal := ts.area * ts.confidence
		if sal > bestSal || (sal == bestSal && tid < id) {
			id, bestSal, ok = tid, sal, true
		}
	}
	return id, ok
}

// cameraDiscoveryTopic is the Home Assistant camera entity of cam's face
// images.
func (s *Sink) cameraDiscoveryTopic(cam string) string {
	return s.cfg.DiscoveryPrefix + "/camera/" + s.cfg.NodeID + "/" + cam + "_face/config"
}

type discoveryMsg struct {
	topic   string
	payload []byte
}

// discovery is the Home Assistant MQTT discovery configs of one camera:
// sensors for the salient emotion, the face count, the camera status and
// the audience (visitors, attention %, mean dwell, mood),
// and with FaceImages a camera showing the most salient face, all
// available while <prefix>/available is online.
func (s *Sink) discovery(cam string) []discoveryMsg {
	node := s.cfg.NodeID
	version := s.cfg.Version
	if version == "" {
		version = "dev"
	}
	id, name := node, "edgemo "+node // ids stay recognisable and unique in HA
	if !strings.HasPrefix(node, "edgemo") {
		id = "edgemo_" + node
	}
	if node == "edgemo" {
		name = "edgemo"
	}
	device := map[string]any{
		"identifiers":  []string{id},
		"name":         name,
		"manufacturer": "edgemo",
		"model":        "edgemo affect analyzer",
		"sw_version":   version,
	}
	base := func(object, name string) map[string]any {
		return map[string]any{
			"name":                  cam + " " + name,
			"unique_id":             id + "_" + object,
			"availability_topic":    s.AvailableTopic(),
			"payload_available":     AvailableOnline,
			"payload_not_available": AvailableOffline,
			"device":                device,
		}
	}
	emotion := base(cam+"_emotion", "emotion")
	emotion["state_topic"] = s.topic(cam, "emotion")
	emotion["value_template"] = "{{ value_json.label }}"
	emotion["json_attributes_topic"] = s.topic(cam, "emotion")
	emotion["icon"] = "mdi:emoticon-outline"

	faces := base(cam+"_faces", "faces")
	faces["state_topic"] = s.topic(cam, "faces")
	faces["unit_of_measurement"] = "faces"
	faces["state_class"] = "measurement"
	faces["icon"] = "mdi:face-recognition"

	status := base(cam+"_status", "status")
	status["state_topic"] = s.topic(cam, "status")
	status["device_class"] = "enum"
	status["options"] = []string{publish.StatusOnline, publish.StatusOffline, publish.StatusReconnecting}
	status["icon"] = "mdi:cctv"

	// The audience sensors read <prefix>/<camera>/audience (the camera's
	// figures over its audience.period).
	aud := s.topic(cam, "audience")
	visitors := base(cam+"_visitors", "visitors")
	visitors["state_topic"] = aud
	visitors["value_template"] = "{{ value_json.visitors }}"
	visitors["unit_of_measurement"] = "visitors"
	visitors["state_class"] = "measurement"
	visitors["icon"] = "mdi:account-group"

	attention := base(cam+"_attention", "attention")
	attention["state_topic"] = aud
	attention["value_template"] = "{{ ((value_json.attention_share | float(0)) * 100) | round(0) }}"
	attention["unit_of_measurement"] = "%"
	attention["state_class"] = "measurement"
	attention["icon"] = "mdi:eye-outline"

	dwell := base(cam+"_dwell", "mean dwell")
	dwell["state_topic"] = aud
	dwell["value_template"] = "{{ value_json.dwell_mean_s }}"
	dwell["unit_of_measurement"] = "s"
	dwell["device_class"] = "duration"
	dwell["state_class"] = "measurement"
	dwell["icon"] = "mdi:timer-outline"

	mood := base(cam+"_mood", "mood")
	mood["state_topic"] = aud
	mood["value_template"] = "{{ value_json.mood if value_json.mood else 'none' }}"
	mood["json_attributes_topic"] = aud
	mood["json_attributes_template"] = "{{ value_json.emotion_mix | tojson }}"
	mood["icon"] = "mdi:emoticon-outline"

	var out []discoveryMsg
	for _, m := range []struct {
		object string
		cfg    map[string]any
	}{{cam + "_emotion", emotion}, {cam + "_faces", faces}, {cam + "_status", status},
		{cam + "_visitors", visitors}, {cam + "_attention", attention}, {cam + "_dwell", dwell}, {cam + "_mood", mood}} {
		b, _ := json.Marshal(m.cfg)
		out = append(out, discoveryMsg{topic: s.cfg.DiscoveryPrefix + "/sensor/" + node + "/" + m.object + "/config", payload: b})
	}
	if s.cfg.FaceImages {
		face := base(cam+"_face", "face")
		face["topic"] = s.topic(cam, "face") // raw JPEG bytes (no image_encoding)
		face["icon"] = "mdi:face-recognition"
		b, _ := json.Marshal(face)
		out = append(out, discoveryMsg{topic: s.cameraDiscoveryTopic(cam), payload: b})
	}
	return out
}
