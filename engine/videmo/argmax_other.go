//go:build !amd64

package videmo

const haveVectorArgmax = false

func maxVec(v []float32) float32         { panic("videmo: no vector argmax on this architecture") }
func findVec(v []float32, x float32) int { panic("videmo: no vector argmax on this architecture") }
