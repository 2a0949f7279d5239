// A video decoder on FFmpeg's libraries directly, for what OpenCV 4.6's
// FFmpeg backend cannot be told: how many threads each decoder runs. OpenCV
// starts one frame thread per CPU in every capture, which on a machine with
// more cameras than cores only adds the threads' hand-offs (avdec.go).
// Frames come out as BGR cv::Mats, converted by swscale as OpenCV does.
// Every call catches C++ exceptions, because cgo cannot.
#ifndef EDGEMO_CAPTURE_AVDEC_H
#define EDGEMO_CAPTURE_AVDEC_H

#ifdef __cplusplus
extern "C" {
#endif

// edgemo_avdec_open opens uri's best video stream with threads decoder
// threads (0: FFmpeg's choice), running the loop filter on the frames
// deblock says: 0 the frames others are predicted from, 1 every frame, 2
// none (Go's Deblock*). open_ms and read_ms bound the open and each read
// (0: unbounded). It returns NULL on failure, with the reason in err
// (size errlen).
void* edgemo_avdec_open(const char* uri, int threads, int deblock, int open_ms, int read_ms, char* err, int errlen);
// edgemo_avdec_read decodes the next frame into mat (a cv::Mat*) as 8-bit
// BGR: 1 for a frame, 0 at the end of the stream, when reads failed or the
// stream's packets stopped decoding. With grid non-NULL and cells > 0 it
// also writes the frame's grey grid from the decoder's luma plane (Go's
// LumaGrid: min(cells, width) columns, each cell the mean of taps² samples
// at the motion grid's positions, in full-range grey) into grid (room for
// cap bytes), its size into *gw and *gh (0 where the frame's format, size
// or turn gives none), and the thread CPU time the grid took into *grid_ns.
int edgemo_avdec_read(void* d, void* mat, unsigned char* grid, int cap, int cells, int taps, int* gw, int* gh, long long* grid_ns);
// edgemo_avdec_get answers the cv::VideoCaptureProperties OpenCV's FFmpeg
// backend answers for files: POS_MSEC, FRAME_WIDTH, FRAME_HEIGHT, FPS,
// FRAME_COUNT; 0 for the others.
double edgemo_avdec_get(void* d, int prop);
// edgemo_avdec_threads is the decoder's thread count as FFmpeg runs it.
int edgemo_avdec_threads(void* d);
void edgemo_avdec_close(void* d);
// edgemo_avdec_versions writes FFmpeg's release and the versions of the
// libraries linked into buf (size len).
void edgemo_avdec_versions(char* buf, int len);

#ifdef __cplusplus
}
#endif

#endif
