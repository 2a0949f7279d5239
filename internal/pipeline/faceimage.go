package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/window"
)

// JPEGQuality of face images: small enough for MQTT, clear enough for a
// dashboard tile.
const JPEGQuality = 85

// EncodeJPEG encodes a BGR crop (Go memory, no Mat) as JPEG.
func EncodeJPEG(c facetrack.Crop) ([]byte, error) {
	if c.W <= 0 || c.H <= 0 || len(c.Pix) != c.W*c.H*3 {
		return nil, fmt.Errorf("crop %d×%d with %d bytes is not BGR", c.W, c.H, len(c.Pix))
	}
	img := image.NewRGBA(image.Rect(0, 0, c.W, c.H))
	for i, j := 0, 0; i < len(c.Pix); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = c.Pix[i+2], c.Pix[i+1], c.Pix[i], 0xff
	}
	var buf bytes.Buffer
	buf.Grow(c.W * c.H / 4)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: JPEGQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// faceImage hands the JPEG of the latest crop of w, the window t was made
// from, to the sinks that take face images, when the privacy gate allows it.
func (p *Pipeline) faceImage(t *tree.Tree, w window.Window) {
	if p.cfg.FaceImages == nil || !p.cfg.FaceImages() {
		return
	}
	var fs []publish.FaceImageSink
	for _, s := range p.sinks {
		if f, ok := s.(publish.FaceImageSink); ok {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		return
	}
	if len(w.Samples) == 0 {
		return
	}
	if t.TrackID != w.TrackID { // never another track's face under this tree
		p.fail("engine", fmt.Errorf("camera %s: tree %s is of track %d but was returned for a window of track %d; its face image is skipped", p.cfg.Camera, t.ID, t.TrackID, w.TrackID))
		return
	}
	b, err := EncodeJPEG(w.Samples[len(w.Samples)-1].Crop)
	if err != nil {
		p.Stats.SinkErrors.Add(1)
		p.fail("sink", fmt.Errorf("camera %s track %d: face image of tree %s: %w", p.cfg.Camera, t.TrackID, t.ID, err))
		return
	}
	for i, f := range fs {
		if i > 0 {
			b = bytes.Clone(b) // each sink owns its copy
		}
		f.FaceImage(p.cfg.Camera, t.TrackID, t.ID, b)
	}
}
