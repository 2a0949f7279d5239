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
#endif
#endif
