#include "area.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace {

// One axis's taps, as OpenCV's INTER_AREA lays them out
// (computeResizeAreaTab): output i covers source [i·scale, (i+1)·scale);
// each source pixel weighs the share of that span it covers, partial ones
// at either end included.
struct Taps {
    std::vector<int> start;  // taps of output i: [start[i], start[i+1])
    std::vector<int> src;
    std::vector<float> w;
};

// taps fills t for one axis. t is reused: its vectors keep their capacity.
void taps(Taps& t, int ssize, int dsize) {
    t.start.clear();
    t.src.clear();
    t.w.clear();
    const double scale = double(ssize) / dsize;
    for (int d = 0; d < dsize; d++) {
        t.start.push_back(int(t.src.size()));
        const double f1 = d * scale, f2 = f1 + scale;
        const double cell = std::min(scale, ssize - f1);
        int s1 = int(std::ceil(f1)), s2 = int(std::floor(f2));
        s2 = std::min(s2, ssize - 1);
        s1 = std::min(s1, s2);
        if (s1 - f1 > 1e-3) {
            t.src.push_back(s1 - 1);
            t.w.push_back(float((s1 - f1) / cell));
        }
        for (int s = s1; s < s2; s++) {
            t.src.push_back(s);
            t.w.push_back(float(1.0 / cell));
        }
        if (f2 - s2 > 1e-3) {
            t.src.push_back(s2);
            t.w.push_back(float(std::min(std::min(f2 - s2, 1.0), cell) / cell));
        }
    }
    t.start.push_back(int(t.src.size()));
}

// Scratch is one thread's taps and row sums, kept between calls so a
// letterbox (every detection) allocates nothing once the sizes were seen.
struct Scratch {
    Taps x, y;
    int xs = -1, xd = -1, ys = -1, yd = -1;  // the sizes x and y were made for
    std::vector<float> row;
};

// accumulate adds w·s to acc, n values: the rows pass, vectorised (O3, and
// restrict: s is bytes, which may alias anything without it). On x86-64 it
// is built for AVX-512, AVX2 and the baseline, and the loader picks what
// the CPU has (GCC's target_clones), so one binary runs everywhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EDGEMO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EDGEMO_CLONES
#endif
EDGEMO_CLONES __attribute__((optimize("O3"))) void accumulate(float* __restrict acc, const unsigned char* __restrict s, float w, int n) {
    for (int i = 0; i < n; i++) acc[i] += w * float(s[i]);
}

inline unsigned char u8(float v) {
    long r = std::lrint(v);
    return (unsigned char)(r < 0 ? 0 : r > 255 ? 255 : r);
}

}  // namespace

int edgemo_area_bgr(const void* srcp, unsigned char* dst, int nw, int nh) {
    try {
        const cv::Mat& src = *static_cast<const cv::Mat*>(srcp);
        if (src.type() != CV_8UC3 || nw < 1 || nh < 1 || nw > src.cols || nh > src.rows) return -1;
        if (src.cols == 2 * nw && src.rows == 2 * nh) {
            // Exactly half: OpenCV's own INTER_AREA is vectorised there.
            cv::Mat out(nh, nw, CV_8UC3, dst);
            cv::resize(src, out, out.size(), 0, 0, cv::INTER_AREA);
            return out.data == dst ? 0 : -3;
        }
        static thread_local Scratch sc;  // per OS thread: callers on other threads never share it
        if (sc.xs != src.cols || sc.xd != nw) {
            taps(sc.x, src.cols, nw);
            sc.xs = src.cols, sc.xd = nw;
        }
        if (sc.ys != src.rows || sc.yd != nh) {
            taps(sc.y, src.rows, nh);
            sc.ys = src.rows, sc.yd = nh;
        }
        const Taps &tx = sc.x, &ty = sc.y;
        const int n = src.cols * 3;
        if (int(sc.row.size()) < n) sc.row.resize(n);
        float* acc = sc.row.data();
        for (int dy = 0; dy < nh; dy++) {
            // Rows first: a weighted sum of whole source rows, which the
            // compiler vectorises; then each output pixel from its columns.
            std::fill(acc, acc + n, 0.0f);
            for (int k = ty.start[dy]; k < ty.start[dy + 1]; k++) {
                accumulate(acc, src.ptr<unsigned char>(ty.src[k]), ty.w[k], n);
            }
            unsigned char* d = dst + size_t(dy) * nw * 3;
            for (int dx = 0; dx < nw; dx++) {
                // An output's taps are consecutive source pixels: partial
                // ones at the ends, whole ones of one weight between.
                const int k0 = tx.start[dx], k1 = tx.start[dx + 1];
                const float* p = acc + 3 * tx.src[k0];
                float b = tx.w[k0] * p[0], g = tx.w[k0] * p[1], r = tx.w[k0] * p[2];
                if (k1 - k0 > 1) {
                    float mb = 0, mg = 0, mr = 0;
                    const float* q = p + 3;
                    for (int k = k0 + 1; k < k1 - 1; k++, q += 3) {
                        mb += q[0];
                        mg += q[1];
                        mr += q[2];
                    }
                    const float wm = tx.w[k0 + 1], wl = tx.w[k1 - 1];
                    b += wm * mb + wl * q[0];
                    g += wm * mg + wl * q[1];
                    r += wm * mr + wl * q[2];
                }
                d[3 * dx] = u8(b);
                d[3 * dx + 1] = u8(g);
                d[3 * dx + 2] = u8(r);
            }
        }
        return 0;
    } catch (const std::exception&) {
        return -2;
    }
}
