#include "avdec.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <time.h>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

namespace {

void copy_err(const char* msg, char* err, int errlen) {
    if (err == nullptr || errlen <= 0) return;
    std::strncpy(err, msg, errlen - 1);
    err[errlen - 1] = '\0';
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The most packets in a row that may fail to decode before a read gives
// up, as OpenCV's OPENCV_FFMPEG_DECODE_ATTEMPTS default.
const int kMaxBadPackets = 64;

struct Dec {
    AVFormatContext* ic = nullptr;
    AVCodecContext* ctx = nullptr;
    AVPacket* pkt = nullptr;
    AVFrame* frame = nullptr;
    SwsContext* sws = nullptr;
    int stream = -1;
    int rotation = 0;           // clockwise degrees to turn frames upright, as OpenCV's auto-orientation
    int64_t deadline = 0;       // interrupt: ms on the steady clock, 0: none
    int read_ms = 0;
    bool pending = false;       // pkt holds a packet the decoder refused (EAGAIN)
    bool flushed = false;       // the end of the stream was sent to the decoder
    double pos_ms = 0;
    cv::Mat upright;            // a rotated stream's frame before its turn

    ~Dec() {
        sws_freeContext(sws);
        av_frame_free(&frame);
        av_packet_free(&pkt);
        avcodec_free_context(&ctx);
        avformat_close_input(&ic);
    }
};

int interrupted(void* opaque) {
    const Dec* d = static_cast<const Dec*>(opaque);
    return d->deadline != 0 && now_ms() > d->deadline;
}

void arm(Dec* d, int ms) { d->deadline = ms > 0 ? now_ms() + ms : 0; }

void av_err(const char* what, int rc, char* err, int errlen) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, buf, sizeof buf);
    char msg[256];
    std::snprintf(msg, sizeof msg, "%s: %s", what, buf);
    copy_err(msg, err, errlen);
}

// quiet sets FFmpeg's log level once per process as OpenCV's FFmpeg backend
// does, which nothing loads now that edgemo decodes itself: errors only
// (AV_LOG_ERROR), or OPENCV_FFMPEG_LOGLEVEL's number when set. At FFmpeg's
// own default every MJPEG camera would print swscale's "deprecated pixel
// format" warning.
void quiet() {
    static std::once_flag once;
    std::call_once(once, [] {
        const char* lvl = std::getenv("OPENCV_FFMPEG_LOGLEVEL");
        av_log_set_level(lvl != nullptr ? std::atoi(lvl) : AV_LOG_ERROR);
        av_log_set_flags(AV_LOG_SKIP_REPEATED); // a damaged stream repeats its error per packet
    });
}

// open_stream does the open's work; on failure it fills err and returns false.
bool open_stream(Dec* d, const char* uri, int threads, int deblock, int open_ms, char* err, int errlen) {
    quiet();
    d->ic = avformat_alloc_context();
    if (d->ic == nullptr) {
        copy_err("out of memory", err, errlen);
        return false;
    }
    d->ic->interrupt_callback.callback = interrupted;
    d->ic->interrupt_callback.opaque = d;
    arm(d, open_ms);
    // The options OpenCV's FFmpeg backend takes, from the same variable, so
    // a deployment's OPENCV_FFMPEG_CAPTURE_OPTIONS ('rtsp_transport;tcp')
    // means what it meant; without it, OpenCV's default.
    AVDictionary* opts = nullptr;
    if (const char* env = std::getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS")) {
        av_dict_parse_string(&opts, env, ";", "|", 0);
    } else {
        av_dict_set(&opts, "rtsp_flags", "prefer_tcp", 0);
    }
    int rc = avformat_open_input(&d->ic, uri, nullptr, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        d->ic = nullptr; // freed by the failed open
        av_err("open", rc, err, errlen);
        return false;
    }
    if ((rc = avformat_find_stream_info(d->ic, nullptr)) < 0) {
        av_err("read the stream's parameters", rc, err, errlen);
        return false;
    }
    const AVCodec* codec = nullptr;
    d->stream = av_find_best_stream(d->ic, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (d->stream < 0 || codec == nullptr) {
        av_err("find a video stream with a decoder", d->stream < 0 ? d->stream : AVERROR_DECODER_NOT_FOUND, err, errlen);
        return false;
    }
    AVStream* st = d->ic->streams[d->stream];
    d->ctx = avcodec_alloc_context3(codec);
    if (d->ctx == nullptr || avcodec_parameters_to_context(d->ctx, st->codecpar) < 0) {
        copy_err("set up the decoder", err, errlen);
        return false;
    }
    d->ctx->thread_count = threads;
    switch (deblock) { // avdec.h: which frames keep the loop filter
    case 1: d->ctx->skip_loop_filter = AVDISCARD_DEFAULT; break;
    case 2: d->ctx->skip_loop_filter = AVDISCARD_ALL; break;
    default: d->ctx->skip_loop_filter = AVDISCARD_NONREF; break;
    }
    if ((rc = avcodec_open2(d->ctx, codec, nullptr)) < 0) {
        av_err("open the decoder", rc, err, errlen);
        return false;
    }
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (d->pkt == nullptr || d->frame == nullptr) {
        copy_err("out of memory", err, errlen);
        return false;
    }
    if (const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr)) {
        // The matrix's angle read as OpenCV 4.6 reads it (clockwise), so a
        // turned file comes out as it did before edgemo decoded it itself.
        int a = int(std::lround(av_display_rotation_get(reinterpret_cast<const int32_t*>(m))));
        d->rotation = ((a % 360) + 360) % 360;
    }
    arm(d, 0);
    return true;
}

// next leaves the next decoded frame in d->frame: 1, or 0 at the end.
int next(Dec* d) {
    int bad = 0;
    for (;;) {
        int rc = avcodec_receive_frame(d->ctx, d->frame);
        if (rc == 0) return 1;
        if (rc == AVERROR_EOF) return 0;
        if (rc != AVERROR(EAGAIN) && ++bad > kMaxBadPackets) return 0;
        if (d->flushed) return 0;
        if (!d->pending) {
            rc = av_read_frame(d->ic, d->pkt);
            if (rc == AVERROR(EAGAIN)) continue;
            if (rc < 0) { // the end, or a read that failed or timed out: drain the decoder
                avcodec_send_packet(d->ctx, nullptr);
                d->flushed = true;
                continue;
            }
            if (d->pkt->stream_index != d->stream) {
                av_packet_unref(d->pkt);
                continue;
            }
        }
        rc = avcodec_send_packet(d->ctx, d->pkt);
        d->pending = rc == AVERROR(EAGAIN);
        if (!d->pending) av_packet_unref(d->pkt);
        if (rc < 0 && rc != AVERROR(EAGAIN) && ++bad > kMaxBadPackets) return 0;
    }
}

double seconds(const AVStream* st, int64_t ts) {
    const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    return double(ts - start) * av_q2d(st->time_base);
}

long long thread_ns() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// add_row adds n bytes of row to acc (or sets acc to them, first), in
// 16-bit lanes; restrict, since bytes may alias anything, and built for
// AVX-512, AVX2 and the baseline where GCC can (target_clones: the loader
// picks what the CPU has).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
__attribute__((optimize("O3"))) void add_row(uint16_t* __restrict acc, const uint8_t* __restrict row, int n, bool first) {
    if (first) {
        for (int x = 0; x < n; x++) acc[x] = row[x];
    } else {
        for (int x = 0; x < n; x++) acc[x] = uint16_t(acc[x] + row[x]);
    }
}

// luma_grid writes f's grey grid from its luma plane (avdec.h), while the
// plane swscale has just read is still in cache: a third of the bytes the
// motion grid reads from the BGR frame, and no colour weighting. Sample
// positions are the motion grid's (facetrack/grid.cpp: INTER_NEAREST_EXACT's,
// 16.16 fixed point), so both read the same pixels; limited-range luma is
// stretched to full range as swscale's conversion does, which makes a cell
// the BT.601 luma of the BGR frame's cell to within rounding. It returns
// false, writing nothing, for a format without an 8-bit luma plane of its
// own (RGB, grey, packed YUV), a frame too small to sample, or a grid
// larger than cap.
bool luma_grid(const AVFrame* f, int cells, int taps, unsigned char* out, int cap, int* gw, int* gh) {
    const AVPixelFormat fmt = AVPixelFormat(f->format);
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(fmt);
    if (desc == nullptr || desc->nb_components < 3 ||
        (desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) != 0)
        return false;
    const AVComponentDescriptor& y = desc->comp[0];
    if (y.plane != 0 || y.step != 1 || y.depth != 8 || y.shift != 0 || y.offset != 0 || f->data[0] == nullptr) return false;
    const int W = f->width, H = f->height;
    if (cells < 1 || taps < 1 || taps > 16 || W < 1 || H < 1) return false;
    const int w = std::min(cells, W), h = std::max(1, (H * w + W / 2) / W);
    const int tw = w * taps, th = h * taps;
    if (W <= tw * 2 || H <= th * 2 || tw > 4096 || th > 4096 || w * h > cap) return false;
    int xs[4096], ys[4096];
    const long long ifx = ((long long)W * 65536 + tw / 2) / tw, ify = ((long long)H * 65536 + th / 2) / th;
    for (int x = 0; x < tw; x++) xs[x] = int(std::min<long long>((ifx / 2 - 1 + x * ifx) >> 16, W - 1));
    for (int r = 0; r < th; r++) ys[r] = int(std::min<long long>((ify / 2 - 1 + r * ify) >> 16, H - 1));
    const bool full = f->color_range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P || fmt == AV_PIX_FMT_YUVJ422P ||
                      fmt == AV_PIX_FMT_YUVJ444P || fmt == AV_PIX_FMT_YUVJ440P || fmt == AV_PIX_FMT_YUVJ411P;
    const int t2 = taps * taps;
    static thread_local std::vector<uint16_t> acc;
    acc.resize(size_t(W));
    uint16_t* a = acc.data();
    for (int cy = 0; cy < h; cy++) {
        // The cell row's taps rows summed whole (a loop the compiler
        // vectorises), then each cell's taps columns picked from the sums.
        for (int j = 0; j < taps; j++) add_row(a, f->data[0] + size_t(ys[cy * taps + j]) * f->linesize[0], W, j == 0);
        unsigned char* o = out + size_t(cy) * w;
        for (int cx = 0; cx < w; cx++) {
            int s = 0;
            for (int i = 0; i < taps; i++) s += a[xs[cx * taps + i]];
            int v;
            if (full) {
                v = (s + t2 / 2) / t2;
            } else { // (mean − 16) · 255/219, rounded, clamped
                const int num = (s - 16 * t2) * 255, den = 219 * t2;
                v = num <= 0 ? 0 : (num + den / 2) / den;
            }
            o[cx] = (unsigned char)std::min(v, 255);
        }
    }
    *gw = w, *gh = h;
    return true;
}

}  // namespace

void* edgemo_avdec_open(const char* uri, int threads, int deblock, int open_ms, int read_ms, char* err, int errlen) {
    Dec* d = nullptr;
    try {
        d = new Dec();
        d->read_ms = read_ms;
        if (open_stream(d, uri, threads, deblock, open_ms, err, errlen)) return d;
    } catch (const std::exception& e) {
        copy_err(e.what(), err, errlen);
    } catch (...) {
        copy_err("unknown C++ exception", err, errlen);
    }
    delete d;
    return nullptr;
}

int edgemo_avdec_read(void* p, void* mat, unsigned char* grid, int cap, int cells, int taps, int* gw, int* gh, long long* grid_ns) {
    Dec* d = static_cast<Dec*>(p);
    if (gw != nullptr) *gw = 0;
    if (gh != nullptr) *gh = 0;
    if (grid_ns != nullptr) *grid_ns = 0;
    try {
        arm(d, d->read_ms);
        const int got = next(d);
        arm(d, 0);
        if (!got) return 0;
        AVFrame* f = d->frame;
        d->sws = sws_getCachedContext(d->sws, f->width, f->height, AVPixelFormat(f->format), f->width, f->height,
                                      AV_PIX_FMT_BGR24, SWS_BICUBIC, nullptr, nullptr, nullptr);
        if (d->sws == nullptr) return 0;
        cv::Mat& out = *static_cast<cv::Mat*>(mat);
        cv::Mat& bgr = d->rotation == 0 ? out : d->upright;
        bgr.create(f->height, f->width, CV_8UC3);
        uint8_t* dst[4] = {bgr.data, nullptr, nullptr, nullptr};
        int step[4] = {int(bgr.step[0]), 0, 0, 0};
        sws_scale(d->sws, f->data, f->linesize, 0, f->height, dst, step);
        switch (d->rotation) {
        case 90: cv::rotate(bgr, out, cv::ROTATE_90_CLOCKWISE); break;
        case 180: cv::rotate(bgr, out, cv::ROTATE_180); break;
        case 270: cv::rotate(bgr, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
        }
        // A turned frame's grid would be the plane's, not the picture's:
        // none, and the motion grid is made from the BGR frame instead.
        if (grid != nullptr && cells > 0 && d->rotation == 0 && gw != nullptr && gh != nullptr && grid_ns != nullptr) {
            const long long t0 = thread_ns();
            if (!luma_grid(f, cells, taps, grid, cap, gw, gh)) *gw = 0, *gh = 0;
            *grid_ns = thread_ns() - t0;
        }
        int64_t ts = f->best_effort_timestamp;
        if (ts == AV_NOPTS_VALUE) ts = f->pts;
        if (ts != AV_NOPTS_VALUE) d->pos_ms = seconds(d->ic->streams[d->stream], ts) * 1000;
        av_frame_unref(f);
        return 1;
    } catch (...) {
        return 0;
    }
}

double edgemo_avdec_get(void* p, int prop) {
    const Dec* d = static_cast<const Dec*>(p);
    const AVStream* st = d->ic->streams[d->stream];
    const bool turned = d->rotation == 90 || d->rotation == 270;
    auto fps = [&] { return av_q2d(av_guess_frame_rate(d->ic, const_cast<AVStream*>(st), nullptr)); };
    switch (prop) {
    case cv::CAP_PROP_POS_MSEC:
        return d->pos_ms;
    case cv::CAP_PROP_FRAME_WIDTH:
        return turned ? d->ctx->height : d->ctx->width;
    case cv::CAP_PROP_FRAME_HEIGHT:
        return turned ? d->ctx->width : d->ctx->height;
    case cv::CAP_PROP_FPS:
        return fps();
    case cv::CAP_PROP_FRAME_COUNT: {
        if (st->nb_frames > 0) return double(st->nb_frames);
        // What OpenCV answers without a count: the duration at the rate.
        double dur = 0;
        if (d->ic->duration != AV_NOPTS_VALUE) dur = double(d->ic->duration) / AV_TIME_BASE;
        else if (st->duration != AV_NOPTS_VALUE) dur = double(st->duration) * av_q2d(st->time_base);
        return std::floor(dur * fps() + 0.5);
    }
    }
    return 0;
}

int edgemo_avdec_threads(void* p) { return static_cast<Dec*>(p)->ctx->thread_count; }

void edgemo_avdec_close(void* p) {
    try {
        delete static_cast<Dec*>(p);
    } catch (...) {
    }
}

void edgemo_avdec_versions(char* buf, int len) {
    auto v = [](unsigned x) { return std::to_string(x >> 16) + "." + std::to_string((x >> 8) & 0xff) + "." + std::to_string(x & 0xff); };
    const std::string s = std::string("FFmpeg ") + av_version_info() + " (libavcodec " + v(avcodec_version()) +
                          ", libavformat " + v(avformat_version()) + ", libswscale " + v(swscale_version()) + ")";
    copy_err(s.c_str(), buf, len);
}
