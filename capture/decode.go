package capture

import (
	"fmt"

	"gocv.io/x/gocv"
)

// DecodeOnly decodes every frame of a video file with plain OpenCV (FFmpeg
// backend, one reused Mat, no timestamps, channel or copies) and returns
// how many it got. It is the baseline the pipeline benchmark compares with.
func DecodeOnly(path string) (frames int, err error) {
	if err := checkFile(path, "video file"); err != nil {
		return 0, err
	}
	vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
	if vc != nil { // allocated even when the open failed
		defer vc.Close()
	}
	if err != nil || !vc.IsOpened() {
		return 0, fmt.Errorf("capture: OpenCV (FFmpeg backend) cannot open %q as a video; %s", path, reencodeHint(path))
	}
	m := gocv.NewMat()
	defer m.Close()
	for vc.Read(&m) && !m.Empty() {
		frames++
	}
	if frames == 0 {
		return 0, fmt.Errorf("capture: %q opened but no frame decoded: the file is truncated or corrupt; %s", path, reencodeHint(path))
	}
	return frames, nil
}
