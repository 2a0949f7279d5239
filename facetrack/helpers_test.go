package facetrack

import "image"

var (
	image0    = image.Pt(0, 0)
	image30   = image.Pt(30, 30)
	image1024 = image.Pt(1024, 1024)
)
