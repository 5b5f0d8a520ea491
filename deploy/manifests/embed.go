// Package manifests carries the sample IoT Edge 1.5 deployment manifest in
// the binary, so the demo applies a real one wherever it runs.
package manifests

import _ "embed"

// IoTEdge15 is iotedge-1.5.json, a manifest template.
//
//go:embed iotedge-1.5.json
var IoTEdge15 []byte
