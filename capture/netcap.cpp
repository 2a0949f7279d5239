#include "netcap.h"

#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

static void copy_err(const char* msg, char* err, int errlen) {
    if (err == nullptr || errlen <= 0) return;
    std::strncpy(err, msg, errlen - 1);
    err[errlen - 1] = '\0';
}

void* edgemo_netcap_open(const char* uri, int open_ms, int read_ms, char* err, int errlen) {
    cv::VideoCapture* cap = nullptr;
    try {
        cap = new cv::VideoCapture();
        std::vector<int> params = {
            cv::CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms,
            cv::CAP_PROP_READ_TIMEOUT_MSEC, read_ms,
        };
        if (!cap->open(uri, cv::CAP_FFMPEG, params) || !cap->isOpened()) {
            delete cap;
            return nullptr;
        }
        return cap;
    } catch (const std::exception& e) {
        copy_err(e.what(), err, errlen);
    } catch (...) {
        copy_err("unknown C++ exception", err, errlen);
    }
    delete cap;
    return nullptr;
}

int edgemo_netcap_read(void* cap, void* mat) {
    try {
        return static_cast<cv::VideoCapture*>(cap)->read(*static_cast<cv::Mat*>(mat)) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

double edgemo_netcap_get(void* cap, int prop) {
    try {
        return static_cast<cv::VideoCapture*>(cap)->get(prop);
    } catch (...) {
        return 0;
    }
}

void edgemo_netcap_close(void* cap) {
    try {
        delete static_cast<cv::VideoCapture*>(cap);
    } catch (...) {
    }
}
