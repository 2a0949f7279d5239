module github.com/edgemo/edgemo

go 1.26

require (
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	github.com/yalue/onnxruntime_go v1.27.0
	gocv.io/x/gocv v0.31.0
)

require golang.org/x/text v0.14.0 // indirect
