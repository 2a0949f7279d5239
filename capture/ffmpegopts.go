package capture

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// ffmpegOptionsEnv is read by OpenCV's FFmpeg backend at every open and
// parsed with av_dict_parse_string(…, ";", "|") into the options of
// avformat_open_input. gocv 0.31 cannot pass CAP_PROP_READ_TIMEOUT_MSEC, so
// this is the only way to bound a network read below OpenCV's built-in 30 s
// interrupt timeout.
const ffmpegOptionsEnv = "OPENCV_FFMPEG_CAPTURE_OPTIONS"

// ffmpegEnvMu serialises the network opens that set ffmpegOptionsEnv, so
// two cameras with different timeouts never see each other's value.
var ffmpegEnvMu sync.Mutex

// ffmpegOptions returns the OPENCV_FFMPEG_CAPTURE_OPTIONS value for opening
// a network source of kind k with read timeout d. user is the variable's
// value and userSet whether it is set at all. The user's options are kept
// verbatim and win: ours go first (av_dict_parse_string lets a later key
// replace an earlier one) and a key the user already gives is not added.
//
// Added keys (values in microseconds):
//   - rw_timeout: FFmpeg's per-operation timeout of a URL (avio), inherited
//     by the TCP connection under http://; a silent peer makes the read fail
//     with ETIMEDOUT after d.
//   - timeout (rtsp only): the RTSP demuxer's socket I/O timeout (FFmpeg 5.x
//     name; "stimeout" before 5.0). RTSP opens its sockets itself, so
//     rw_timeout does not reach them.
//   - rtsp_flags;prefer_tcp (rtsp only, when the variable is unset): OpenCV
//     sets this itself only when the variable is unset, so setting the
//     variable must not silently switch RTSP back to UDP first.
func ffmpegOptions(user string, userSet bool, k Kind, d time.Duration) string {
	us := strconv.FormatInt(d.Microseconds(), 10)
	var ours [][2]string
	if k == KindRTSP && !userSet {
		ours = append(ours, [2]string{"rtsp_flags", "prefer_tcp"})
	}
	ours = append(ours, [2]string{"rw_timeout", us})
	if k == KindRTSP {
		ours = append(ours, [2]string{"timeout", us})
	}
	have := map[string]bool{}
	for _, pair := range strings.Split(user, "|") {
		key, _, _ := strings.Cut(pair, ";")
		have[strings.TrimSpace(key)] = true
	}
	var parts []string
	for _, kv := range ours {
		if !have[kv[0]] {
			parts = append(parts, kv[0]+";"+kv[1])
		}
	}
	if strings.TrimSpace(user) != "" {
		parts = append(parts, user)
	}
	return strings.Join(parts, "|")
}

// openNetwork opens an RTSP or HTTP URL with the FFmpeg backend, its reads
// bounded by s.cfg.ReadTimeout through OPENCV_FFMPEG_CAPTURE_OPTIONS. The
// variable is set only for the duration of the open (OpenCV reads it there
// and nowhere else) and then restored, under ffmpegEnvMu.
func (s *Source) openNetwork() (*gocv.VideoCapture, error) {
	ffmpegEnvMu.Lock()
	defer ffmpegEnvMu.Unlock()
	user, userSet := os.LookupEnv(ffmpegOptionsEnv)
	opts := ffmpegOptions(user, userSet, s.kind, s.cfg.ReadTimeout)
	s.log.Debug("ffmpeg capture options", "env", ffmpegOptionsEnv, "options", opts, "read_timeout", s.cfg.ReadTimeout, "user_set", userSet)
	if err := os.Setenv(ffmpegOptionsEnv, opts); err != nil {
		s.log.Warn("cannot set FFmpeg capture options; network reads time out after OpenCV's 30s", "err", err)
	}
	defer func() {
		if userSet {
			os.Setenv(ffmpegOptionsEnv, user)
		} else {
			os.Unsetenv(ffmpegOptionsEnv)
		}
	}()
	return gocv.VideoCaptureFileWithAPI(s.name, gocv.VideoCaptureFFmpeg)
}
