package engine

import (
	"reflect"
	"strings"
	"testing"
)

func TestTensorRTProviderOptions(t *testing.T) {
	if got := (TensorRTOptions{}).providerOptions(); len(got) != 0 {
		t.Fatalf("zero options set keys: %v", got)
	}
	got := TensorRTOptions{FP16: true, EngineCacheDir: "/var/cache/edgemo/trt", INT8CalibrationTable: "calib.flatbuffers"}.providerOptions()
	want := map[string]string{
		"trt_fp16_enable":                 "1",
		"trt_engine_cache_enable":         "1",
		"trt_engine_cache_path":           "/var/cache/edgemo/trt",
		"trt_timing_cache_enable":         "1",
		"trt_timing_cache_path":           "/var/cache/edgemo/trt",
		"trt_int8_enable":                 "1",
		"trt_int8_calibration_table_name": "calib.flatbuffers",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// On this CPU-only ORT build, TensorRT with options still falls back to CPU.
func TestTensorRTWithOptionsFallsBack(t *testing.T) {
	checkGoroutines(t)
	var logs syncBuffer
	rt, err := NewRuntime(RuntimeConfig{Providers: []string{"tensorrt", "cpu"}, Logger: slogText(&logs),
		TensorRT: TensorRTOptions{FP16: true, EngineCacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	h, err := NewEmotionHead(rt, emotionManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Provider() != ProviderCPU {
		t.Fatalf("provider %s", h.Provider())
	}
	if !strings.Contains(logs.String(), "TensorrtExecutionProvider") {
		t.Fatalf("fallback not logged:\n%s", logs.String())
	}
}
