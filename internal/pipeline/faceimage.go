package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"

	"github.com/edgemo/edgemo/facetrack"
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
