// Graph passes run by the ONNX importer after translation. Each keeps the node list a valid run order and
// keeps the names of graph inputs and outputs stable (a fused node takes the name of the tensor it replaces).
#pragma once

#include <functional>

#include "graph/graph.h"

namespace octet::onnx {

// Identity (and inference Dropout, which the importer turns into Identity) copies a tensor: consumers read the
// input directly instead. When the Identity's output is a graph output, its producer is renamed to produce it.
// Kept only when both names must stay (a graph input or output passed straight to a graph output).
void remove_identities(Graph& graph);

// BatchNormalization after a Conv whose weights are constants, that Conv's output read by nothing else:
// with a = scale / sqrt(var + eps) per output channel, the Conv's weights become W * a and its bias
// (B - mean) * a + beta, so inference skips a pass over the activation. Creates new constants (weights may be
// shared with other graphs); the old ones go when unused.
void fold_batch_norm(Graph& graph);

// Conv followed by Relu, Clip or LeakyRelu as its only consumer: the activation becomes the Conv's post-op
// (act = relu | clip | leaky_relu; clip: act_alpha = min, act_beta = max; leaky_relu: act_alpha = alpha),
// or its sum_act when the Conv already carries a residual sum. oneDNN applies it while writing the output.
void fuse_conv_activation(Graph& graph);

// Add(a, b) where one operand comes from a Conv read only by this Add, and the other has the same shape and is
// computed before that Conv: the Conv takes the other operand as its 4th input (the residual sum, added after
// its activation; the bias slot becomes "" if absent) and produces the Add's output. A following activation
// becomes sum_act. This is ResNet's residual block: conv -> [bn folded] -> add -> relu. `may_fuse`, when
// given, can refuse a Conv (a quantized model that rounds the Conv's output before the Add).
void fuse_conv_sum(Graph& graph, const std::function<bool(const Node&)>& may_fuse = {});

// A 1x1 Conv (stride 1, no padding, no fused activation or sum) read only by a GlobalAveragePool: the pool
// runs first and the Conv on the single pooled pixel (exact: the mean commutes with the per-pixel linear map).
// Darknet's classifier is such a Conv before the pool; it then costs one pixel instead of H x W. `may_move`,
// when given, can refuse a (Conv, pool) pair (a quantized model that rounds the Conv's output).
void pool_before_pointwise_conv(Graph& graph,
                                const std::function<bool(const Node& conv, const Node& pool)>& may_move = {});

// Removes nodes whose outputs nobody reads (and that produce no graph output), LayerNormalization's trailing
// statistics outputs nobody reads, then constants no node reads and TensorInfo entries of tensors that no longer
// exist, so later stages only see what runs.
void eliminate_dead_code(Graph& graph);

}  // namespace octet::onnx