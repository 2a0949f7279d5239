#ifndef EDGEMO_AREA_H
#define EDGEMO_AREA_H
#ifdef __cplusplus
extern "C" {
#endif

// edgemo_area_bgr: see area.go.
int edgemo_area_bgr(const void* src, unsigned char* dst, int nw, int nh);

// edgemo_motion_grid: see motionGrid in area.go.
int edgemo_motion_grid(const void* src, unsigned char* grey, int w, int h, int taps);

#ifdef __cplusplus
}

#include <cstdint>
#include <cstring>

// edgemoRoundEven is lrint in the default rounding mode (to nearest, ties
// to even) for |v| < 2²², inline where lrint is a libm call, so loops over
// it vectorise: adding 1.5·2²³ leaves the rounded integer in the float's
// low mantissa bits.
inline int edgemoRoundEven(float v) {
    const float t = v + 12582912.0f;
    int r;
    std::memcpy(&r, &t, sizeof r);
    return r - 0x4B400000;
}

// edgemoRowSums sets acc[j] to the sum of rows[i][j], i < k, for j < n, in
// 16-bit lanes (k ≤ 257), vectorised (area.cpp).
void edgemoRowSums(uint16_t* acc, const unsigned char* const* rows, int n, int k);
#endif
#endif
