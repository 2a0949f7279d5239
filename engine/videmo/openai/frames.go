package openai

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"strings"

	"github.com/edgemo/edgemo/facetrack"
)

// VideoURL is the data URL of a video given as its frames, the form vLLM
// reads for video_url parts ("data:video/jpeg;base64,<frame>,<frame>,…":
// each frame base64 on its own, decoded as an image). The frames are PNG,
// which is lossless, so the server sees the very pixels the local runner
// would (vLLM decodes each frame with PIL, which reads PNG whatever the
// media type says).
func VideoURL(frames []facetrack.Crop) (string, error) {
	var b strings.Builder
	b.WriteString("data:video/jpeg;base64,")
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	for i, f := range frames {
		if f.W <= 0 || f.H <= 0 || len(f.Pix) < f.W*f.H*3 {
			return "", fmt.Errorf("frame %d: bad crop %dx%d with %d bytes", i, f.W, f.H, len(f.Pix))
		}
		img := image.NewNRGBA(image.Rect(0, 0, f.W, f.H))
		for p := 0; p < f.W*f.H; p++ { // BGR -> RGBA
			img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = f.Pix[3*p+2], f.Pix[3*p+1], f.Pix[3*p], 255
		}
		var buf bytes.Buffer
		if err := enc.Encode(&buf, img); err != nil {
			return "", fmt.Errorf("frame %d: png: %w", i, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(base64.StdEncoding.EncodeToString(buf.Bytes()))
	}
	return b.String(), nil
}

// FrameLimits bound what a decoded data URL may cost before it is decoded.
type FrameLimits struct {
	MaxFrames int // frames per request
	MaxSide   int // pixels per side of one frame
}

// splitDataURL returns the media type and the base64 payloads of a data
// URL; a video's payload is a comma-separated list of frames.
func splitDataURL(u string) (string, []string, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", nil, errors.New("only data: URLs are read (base64 frames); this server fetches nothing from the network")
	}
	mt, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return "", nil, errors.New("data URL without a payload")
	}
	media, enc, _ := strings.Cut(mt, ";")
	if enc != "base64" {
		return "", nil, fmt.Errorf("data URL %q: only base64 payloads are read", mt)
	}
	return media, strings.Split(payload, ","), nil
}

// decodeFrame decodes one base64 PNG or JPEG frame to a BGR crop,
// checking its size before decoding its pixels.
func decodeFrame(b64 string, lim FrameLimits) (facetrack.Crop, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return facetrack.Crop{}, fmt.Errorf("base64: %w", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return facetrack.Crop{}, fmt.Errorf("not a PNG or JPEG image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > lim.MaxSide || cfg.Height > lim.MaxSide {
		return facetrack.Crop{}, fmt.Errorf("%s image %dx%d: each side must be between 1 and %d pixels", format, cfg.Width, cfg.Height, lim.MaxSide)
	}
	var img image.Image
	switch format {
	case "png":
		img, err = png.Decode(bytes.NewReader(raw))
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(raw))
	default:
		return facetrack.Crop{}, fmt.Errorf("%s image: send PNG or JPEG frames", format)
	}
	if err != nil {
		return facetrack.Crop{}, fmt.Errorf("%s: %w", format, err)
	}
	return toBGR(img), nil
}

func toBGR(img image.Image) facetrack.Crop {
	r := img.Bounds()
	c := facetrack.Crop{W: r.Dx(), H: r.Dy(), Pix: make([]byte, r.Dx()*r.Dy()*3)}
	var pix []byte
	var stride int
	switch n := img.(type) {
	case *image.NRGBA:
		pix, stride = n.Pix, n.Stride
	case *image.RGBA: // opaque PNGs decode to this; opaque RGBA is NRGBA
		pix, stride = n.Pix, n.Stride
	}
	if pix != nil {
		for y := 0; y < c.H; y++ {
			row := pix[y*stride:]
			for x := 0; x < c.W; x++ {
				o := 3 * (y*c.W + x)
				c.Pix[o], c.Pix[o+1], c.Pix[o+2] = row[4*x+2], row[4*x+1], row[4*x]
			}
		}
		return c
	}
	for y := 0; y < c.H; y++ {
		for x := 0; x < c.W; x++ {
			// an opaque frame's 16-bit channels are the 8-bit ones × 257
			rr, gg, bb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			o := 3 * (y*c.W + x)
			c.Pix[o], c.Pix[o+1], c.Pix[o+2] = byte(bb>>8), byte(gg>>8), byte(rr>>8)
		}
	}
	return c
}
