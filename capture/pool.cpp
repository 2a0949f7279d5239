#include "pool.h"

#include <opencv2/core.hpp>

int edgemo_mat_sole(void* m) {
    const cv::Mat& x = *static_cast<const cv::Mat*>(m);
    return x.u != nullptr && x.u->refcount == 1 && x.data == x.datastart ? 1 : 0;
}
