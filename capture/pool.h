#ifndef EDGEMO_CAPTURE_POOL_H
#define EDGEMO_CAPTURE_POOL_H
#ifdef __cplusplus
extern "C" {
#endif
// edgemo_mat_sole: 1 when the cv::Mat at m owns allocated pixels no other
// header shares (its refcount is 1), so writing into it again is safe.
int edgemo_mat_sole(void* m);
#ifdef __cplusplus
}
#endif
#endif
