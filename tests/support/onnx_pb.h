// ONNX's protobuf classes for tests that build or read ONNX models themselves. The onnx_proto target's
// definitions do not propagate through the converter libraries, so they are set here.
#pragma once

#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/onnx_pb.h>
