// Opens a network stream with OpenCV's FFmpeg backend and per-capture
// open/read timeouts, which gocv 0.31 cannot pass (it has no
// VideoCaptureFileWithAPIParams). Every call catches C++ exceptions,
// because cgo cannot.
#ifndef EDGEMO_CAPTURE_NETCAP_H
#define EDGEMO_CAPTURE_NETCAP_H

#ifdef __cplusplus
extern "C" {
#endif

// edgemo_netcap_open returns a new cv::VideoCapture* (as void*) opened on
// uri with CAP_FFMPEG and CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC,
// or NULL when the open failed or threw; err (size errlen) receives the
// exception text, if any.
void* edgemo_netcap_open(const char* uri, int open_ms, int read_ms, char* err, int errlen);
// edgemo_netcap_read decodes the next frame into mat (a cv::Mat*); 0 on failure.
int edgemo_netcap_read(void* cap, void* mat);
double edgemo_netcap_get(void* cap, int prop);
void edgemo_netcap_close(void* cap);

#ifdef __cplusplus
}
#endif

#endif
