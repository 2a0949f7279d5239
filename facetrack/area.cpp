#include "area.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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
    // The columns' taps padded to a fixed count T and laid out per tap,
    // per output byte: output byte j sums xw[t·m+j]·row[xi[t·m+j]] for
    // t < T (m = 3·nw), zero weights past its own taps, so the columns pass
    // is T gathers over the whole output row, which vectorise.
    int T = 0;
    std::vector<int> xi;
    std::vector<float> xw;
    std::vector<float> out;  // one output row's sums
    std::vector<float> row;  // the rows' weighted sum, 3·T zeros past its end
    std::vector<uint16_t> box, hsum;  // an integer-factor shrink's row and block sums
};

// pad fills sc's padded column taps from sc.x.
void pad(Scratch& sc, int nw) {
    const Taps& t = sc.x;
    const int m = 3 * nw;
    sc.T = 1;
    for (int d = 0; d < nw; d++) sc.T = std::max(sc.T, t.start[d + 1] - t.start[d]);
    sc.xi.assign(size_t(m) * sc.T, 0);
    sc.xw.assign(size_t(m) * sc.T, 0.0f);
    for (int d = 0; d < nw; d++) {
        const int k0 = t.start[d], k1 = t.start[d + 1];
        for (int k = 0; k < sc.T; k++) {
            for (int c = 0; c < 3; c++) {
                const size_t j = size_t(k) * m + 3 * d + c;
                // Padding taps read the pixels after the last, which the
                // row buffer holds as zeros, with a zero weight.
                sc.xi[j] = 3 * (t.src[k0] + k) + c;
                sc.xw[j] = k0 + k < k1 ? t.w[k0 + k] : 0.0f;
            }
        }
    }
    sc.out.resize(m);
}

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

// gather adds w[j]·acc[idx[j]] to o[j], m values: one tap of the columns
// pass, vectorised as gathers where the CPU has them.
EDGEMO_CLONES __attribute__((optimize("O3"))) void gather(float* __restrict o, const float* __restrict acc, const int* __restrict idx, const float* __restrict w, int m) {
    for (int j = 0; j < m; j++) o[j] += w[j] * acc[idx[j]];
}

// bytes rounds m sums to bytes as INTER_AREA's saturate_cast does (to
// nearest, ties to even; edgemoRoundEven, exact for the sums' range).
EDGEMO_CLONES __attribute__((optimize("O3"))) void bytes(unsigned char* __restrict d, const float* __restrict o, int m) {
    for (int j = 0; j < m; j++) {
        const int r = edgemoRoundEven(o[j]);
        d[j] = (unsigned char)(r < 0 ? 0 : r > 255 ? 255 : r);
    }
}

// rowSums sets acc to the sum of the k rows' bytes, n values: the rows
// pass of a whole-factor shrink, in one vectorised pass of 16-bit lanes
// (twice the float pass's per vector, and no conversions). K is k fixed at
// compile time, unrolled, or 0.
template <int K>
EDGEMO_CLONES __attribute__((optimize("O3"))) void rowSums(uint16_t* __restrict acc, const unsigned char* const* rows, int n, int k) {
    if (K == 0) {
        std::fill(acc, acc + n, uint16_t(0));
        for (int i = 0; i < k; i++) {
            const unsigned char* __restrict s = rows[i];
            for (int j = 0; j < n; j++) acc[j] += s[j];
        }
        return;
    }
    const unsigned char* r[K > 0 ? K : 1];
    for (int i = 0; i < K; i++) r[i] = rows[i];
    for (int j = 0; j < n; j++) {
        unsigned s = 0;
        for (int i = 0; i < K; i++) s += r[i][j];
        acc[j] = uint16_t(s);
    }
}

// blockSums sets h[j] to the sum of a[j + 3i], i < k, for j < n: every
// pixel's sum with its k−1 right neighbours, channel by channel (a block's
// sum is then at its first pixel), in one vectorised pass. a holds 3·(k−1)
// values past n. K as rowSums'.
template <int K>
EDGEMO_CLONES __attribute__((optimize("O3"))) void blockSums(uint16_t* __restrict h, const uint16_t* __restrict a, int n, int k) {
    if (K == 0) {
        std::copy(a, a + n, h);
        for (int i = 1; i < k; i++) {
            const uint16_t* s = a + 3 * i;
            for (int j = 0; j < n; j++) h[j] += s[j];
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        unsigned s = 0;
        for (int i = 0; i < K; i++) s += a[j + 3 * i];
        h[j] = uint16_t(s);
    }
}

// The factors the letterboxes meet (720p into 256 or 128: 5, 10; regions:
// 2 to 8), unrolled; others run with k at run time.
using RowSums = void (*)(uint16_t*, const unsigned char* const*, int, int);
using BlockSums = void (*)(uint16_t*, const uint16_t*, int, int);
const RowSums rowSumsBy[] = {rowSums<0>, rowSums<0>, rowSums<2>, rowSums<3>, rowSums<4>, rowSums<5>, rowSums<6>, rowSums<7>, rowSums<8>, rowSums<0>, rowSums<10>};
const BlockSums blockSumsBy[] = {blockSums<0>, blockSums<0>, blockSums<2>, blockSums<3>, blockSums<4>, blockSums<5>, blockSums<6>, blockSums<7>, blockSums<8>, blockSums<0>, blockSums<10>};
const int unrolledUpTo = 10;

// pick scales every (3·kx)th triple of h, the blocks' sums, by inv into o,
// m = 3·nw values.
void pick(float* __restrict o, const uint16_t* __restrict h, int kx, float inv, int nw) {
    const int step = 3 * kx;
    for (int d = 0; d < nw; d++, h += step, o += 3) o[0] = float(h[0]) * inv, o[1] = float(h[1]) * inv, o[2] = float(h[2]) * inv;
}

// boxShrink is INTER_AREA where both axes shrink by whole factors (a 720p
// frame into 256×144, 5×): every output pixel is the plain mean of a kx×ky
// block, summed exactly in integers and rounded as OpenCV's own integer-
// factor path rounds (the float mean, to nearest, ties to even). Factors
// up to 16 keep the sums within 16 bits (256·255).
void boxShrink(const cv::Mat& src, unsigned char* dst, int nw, int nh, int kx, int ky, std::vector<uint16_t>& acc, std::vector<uint16_t>& hsum, std::vector<float>& out) {
    const int n = nw * kx * 3, m = 3 * nw;
    acc.assign(n + 3 * kx, 0);  // zeros past the last block for blockSums' reads
    hsum.resize(n);
    out.resize(m);
    const float inv = 1.0f / float(kx * ky);
    for (int dy = 0; dy < nh; dy++) {
        const unsigned char* rows[16];  // ky ≤ 16 (edgemo_area_bgr)
        for (int r = 0; r < ky; r++) rows[r] = src.ptr<unsigned char>(dy * ky + r);
        uint16_t* sums = acc.data();
        edgemoRowSums(sums, rows, n, ky);
        // Columns: block d's sums are at triple kx·d of the rows' sums
        // each added to their kx−1 right neighbours'.
        uint16_t* h = hsum.data();
        (kx <= unrolledUpTo ? blockSumsBy[kx] : blockSums<0>)(h, sums, n, kx);
        pick(out.data(), h, kx, inv, nw);
        bytes(dst + size_t(dy) * m, out.data(), m);
    }
}

}  // namespace

void edgemoRowSums(uint16_t* acc, const unsigned char* const* rows, int n, int k) {
    (k <= unrolledUpTo ? rowSumsBy[k] : rowSums<0>)(acc, rows, n, k);
}

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
        const int kx = src.cols / nw, ky = src.rows / nh;
        if (src.cols == kx * nw && src.rows == ky * nh && kx * ky > 1 && kx <= 16 && ky <= 16) {
            boxShrink(src, dst, nw, nh, kx, ky, sc.box, sc.hsum, sc.out);
            return 0;
        }
        if (sc.xs != src.cols || sc.xd != nw) {
            taps(sc.x, src.cols, nw);
            pad(sc, nw);
            sc.xs = src.cols, sc.xd = nw;
        }
        if (sc.ys != src.rows || sc.yd != nh) {
            taps(sc.y, src.rows, nh);
            sc.ys = src.rows, sc.yd = nh;
        }
        const Taps& ty = sc.y;
        const int n = src.cols * 3, T = sc.T, m = 3 * nw;
        sc.row.resize(size_t(n) + 3 * T);
        float* acc = sc.row.data();
        float* out = sc.out.data();
        std::fill(acc + n, acc + n + 3 * T, 0.0f);  // what the padded taps past the last pixel read
        for (int dy = 0; dy < nh; dy++) {
            // Rows first: a weighted sum of whole source rows; then each
            // output byte from its columns' taps. Both vectorise.
            std::fill(acc, acc + n, 0.0f);
            for (int k = ty.start[dy]; k < ty.start[dy + 1]; k++) {
                accumulate(acc, src.ptr<unsigned char>(ty.src[k]), ty.w[k], n);
            }
            std::fill(out, out + m, 0.0f);
            for (int k = 0; k < T; k++) gather(out, acc, sc.xi.data() + size_t(k) * m, sc.xw.data() + size_t(k) * m, m);
            bytes(dst + size_t(dy) * m, out, m);
        }
        return 0;
    } catch (const std::exception&) {
        return -2;
    }
}
