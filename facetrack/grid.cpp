#include "area.h"

#include <algorithm>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>

// edgemo_motion_grid: see motionGrid in area.go. It gives, bit for bit,
// what shrink (nearest-exact samples, then INTER_AREA's integer-factor
// mean) followed by the BT.601 integer luma gives, reading only the
// sampled rows and with no Mat in between. taps ≤ 16.
int edgemo_motion_grid(const void* srcp, unsigned char* grey, int w, int h, int taps) {
    try {
        const cv::Mat& src = *static_cast<const cv::Mat*>(srcp);
        const int ch = src.channels();
        if (src.depth() != CV_8U || (ch != 1 && ch != 3 && ch != 4) || w < 1 || h < 1 || taps < 1 || taps > 16) return -1;
        const int W = src.cols, H = src.rows, tw = w * taps, th = h * taps;
        if (tw > W || th > H || tw > 4096 || th > 4096) return -1;
        // INTER_NEAREST_EXACT's source positions as OpenCV 4.6 computes them
        // (16.16 fixed point, pixel centres less one 16.16 unit; checked
        // against every width from 330 to 4000 into 97, 180 and 320).
        int xs[4096], ys[4096];
        const long long ifx = ((long long)W * 65536 + tw / 2) / tw, ify = ((long long)H * 65536 + th / 2) / th;
        const long long ifx0 = ifx / 2 - 1, ify0 = ify / 2 - 1;
        for (int x = 0; x < tw; x++) xs[x] = int(std::min<long long>((ifx0 + x * ifx) >> 16, W - 1)) * ch;
        for (int y = 0; y < th; y++) ys[y] = int(std::min<long long>((ify0 + y * ify) >> 16, H - 1));
        const float inv = 1.0f / float(taps * taps);
        // Each cell row's taps rows summed whole first (one vectorised pass:
        // the samples are closer than a cache line, so every byte of those
        // rows is read anyway), then each cell's samples picked from the
        // sums: a quarter of the scalar loads of picking them row by row.
        static thread_local std::vector<uint16_t> acc;
        acc.resize(size_t(W) * ch);
        const unsigned char* rows[16];
        for (int cy = 0; cy < h; cy++) {
            for (int j = 0; j < taps; j++) rows[j] = src.ptr<unsigned char>(ys[cy * taps + j]);
            edgemoRowSums(acc.data(), rows, W * ch, taps);
            const uint16_t* a = acc.data();
            unsigned char* out = grey + size_t(cy) * w;
            for (int cx = 0; cx < w; cx++) {
                const int* xp = xs + cx * taps;
                int s0 = 0, s1 = 0, s2 = 0;
                if (ch == 1) {
                    for (int i = 0; i < taps; i++) s0 += a[xp[i]];
                } else {
                    for (int i = 0; i < taps; i++) {
                        const uint16_t* p = a + xp[i];
                        s0 += p[0], s1 += p[1], s2 += p[2];
                    }
                }
                // INTER_AREA's mean rounds as cvRound does: to nearest, ties to even.
                const int b = edgemoRoundEven(float(s0) * inv);
                if (ch == 1) {
                    out[cx] = (unsigned char)b;
                    continue;
                }
                const int g = edgemoRoundEven(float(s1) * inv), r = edgemoRoundEven(float(s2) * inv);
                out[cx] = (unsigned char)((29 * b + 150 * g + 77 * r) >> 8);
            }
        }
        return 0;
    } catch (const std::exception&) {
        return -2;
    }
}
