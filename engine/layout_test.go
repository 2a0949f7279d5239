package engine

import (
	"runtime"
	"testing"
)

// TestFaceModelsRunBlocked: on x86, ONNX Runtime's CPU provider keeps each
// face model in its blocked NCHWc layout from the first convolution to the
// output heads (its optimized-model dump, read back by onnx), because the
// converter leaves only activations ORT fuses into a convolution
// (scripts/tfjs2onnx.py: relu6 as one Clip, batch-norm constants folded,
// BlazeFace's and the mesh's channels padded, the mesh's per-channel PRelu,
// which has no NCHWc kernel, as depthwise convolutions). Every
// ReorderInput/ReorderOutput is a pass over an activation: faceres had 53
// before the fold (1.2x its Run), the mesh 62 before the PRelu rewrite
// (1.2-1.35x).
func TestFaceModelsRunBlocked(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("NCHWc is ORT's x86 layout; arm64 runs NCHW throughout")
	}
	newTestRuntime(t, quietLogger()) // loads the ORT library
	maxReorders := map[string]int{
		"emotion": 1, "antispoof": 1, "faceres": 1, // to the classifier
		"blazeface-back": 4, "blazeface-front": 4, // one per output head
		"facemesh": 3, // one per output
	}
	for name, most := range maxReorders {
		t.Run(name, func(t *testing.T) {
			c := optimizedOpCounts(t, faceManifest(t, name))
			if n := c["ReorderInput"] + c["ReorderOutput"]; n > most {
				t.Errorf("%s: %d layout reorders in ORT's optimized graph, want at most %d: %v", name, n, most, c)
			}
			for _, op := range []string{"Min", "Max", "Clip", "Mul"} {
				if c[op] > 0 {
					t.Errorf("%s: %d %s left unfused in ORT's optimized graph: %v", name, c[op], op, c)
				}
			}
		})
	}
}
