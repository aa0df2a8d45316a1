#!/usr/bin/env python3
"""onnx_float64.py MODEL.onnx PREFIX [--images N]

The arithmetic an ONNX model specifies, evaluated in float64 with numpy, on the tensors octet and ONNX
Runtime ran (same-inputs wrote PREFIX.inputs, PREFIX.logits and PREFIX.json; ort_accuracy.js wrote
PREFIX.ort-logits). For a QDQ model this is the model's exact arithmetic up to double rounding: a
DequantizeLinear value (q - zero_point) * scale is exact in double, the products and sums of a Conv are within
1e-15 of exact, and each QuantizeLinear rounds x / scale half to even as the ONNX spec says (the graph input's
in float32: that input is float32 data, which both runtimes and the spec's own reference divide in float32). It tells how far
each runtime's rounding strays from the model's: it prints one JSON object with the Top-1 of float64, octet and
ORT against the labels, their pairwise Top-1 agreement and each runtime's logit SQNR against float64.

Ops: QuantizeLinear, DequantizeLinear (per tensor or per axis), Conv (groups, pads, strides, dilations),
Gemm, Relu, LeakyRelu, Clip, Add, MaxPool, GlobalAveragePool, Flatten, Identity, Constant; any other op is an
error naming it. Needs python3-onnx (which brings numpy).
"""
import json
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def per_axis(v, axis, rank):
    """A per-axis parameter vector shaped to broadcast along `axis` of a rank-`rank` tensor."""
    if v.ndim == 0 or v.size == 1:
        return v.reshape(())
    shape = [1] * rank
    shape[axis] = v.size
    return v.reshape(shape)


QRANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def quantize(x, scale, zp, axis, in_float32=False):
    """saturate(round_half_even(x / scale) + zp); the quotient in double, or in float32 when in_float32."""
    dtype = np.float32 if in_float32 else np.float64
    s = per_axis(scale.astype(dtype), axis, x.ndim)
    z = per_axis(zp.astype(np.float64), axis, x.ndim)
    lo, hi = QRANGE[zp.dtype]
    return np.clip(np.rint((x.astype(dtype) / s).astype(np.float64)) + z, lo, hi)  # np.rint: half to even


def dequantize(q, scale, zp, axis):
    return (q - per_axis(zp.astype(np.float64), axis, q.ndim)) * per_axis(scale.astype(np.float64), axis, q.ndim)


def windows(x, kernel, strides, dilations):
    """[N, C, *out, *kernel] view of x's sliding windows (x already padded)."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    out = [(spatial[i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in range(len(kernel))]
    st = x.strides
    return np.lib.stride_tricks.as_strided(
        x,
        shape=(n, c, *out, *kernel),
        strides=(st[0], st[1], *[st[2 + i] * strides[i] for i in range(len(kernel))],
                 *[st[2 + i] * dilations[i] for i in range(len(kernel))]),
        writeable=False)


def pad_spatial(x, pads, value=0.0):
    k = len(pads) // 2
    return np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + k]) for i in range(k)], constant_values=value)


def conv(x, w, b, a):
    k = list(w.shape[2:])
    rank = len(k)
    strides = a.get('strides', [1] * rank)
    dilations = a.get('dilations', [1] * rank)
    pads = a.get('pads', [0] * (2 * rank))
    if a.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET'):
        raise ValueError('Conv auto_pad is not supported here')
    group = a.get('group', 1)
    win = windows(pad_spatial(x, pads), k, strides, dilations)  # N, C, *out, *k
    n, c = x.shape[:2]
    out = win.shape[2:2 + rank]
    cg, og = c // group, w.shape[0] // group
    # [N, G, out, cg * k] against [G, og, cg * k]: every group at once (depthwise has one channel per group).
    xg = win.reshape(n, group, cg, *out, *k)
    xg = np.moveaxis(xg, 2, 2 + rank).reshape(n, group, int(np.prod(out)), -1)
    wg = w.reshape(group, og, -1)
    y = np.einsum('ngpk,gok->ngop', xg, wg).reshape(n, w.shape[0], *out)
    if b is not None:
        y = y + b.reshape(1, -1, *[1] * rank)
    return y


def max_pool(x, a):
    k = a['kernel_shape']
    rank = len(k)
    if a.get('ceil_mode', 0) or a.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET'):
        raise ValueError('MaxPool ceil_mode / auto_pad are not supported here')
    win = windows(pad_spatial(x, a.get('pads', [0] * 2 * rank), -np.inf), k, a.get('strides', [1] * rank),
                  a.get('dilations', [1] * rank))
    return win.max(axis=tuple(range(2 + rank, 2 + 2 * rank)))


class Evaluator:
    def __init__(self, path):
        model = onnx.load(path)
        self.graph = model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.input = [i.name for i in self.graph.input if i.name not in self.constants][0]
        self.output = self.graph.output[0].name
        for node in self.graph.node:  # Constant nodes, once
            if node.op_type == 'Constant':
                self.constants[node.output[0]] = numpy_helper.to_array(attrs(node)['value'])

    def run(self, x):
        env = dict(self.constants)
        env[self.input] = x.astype(np.float64)
        for node in self.graph.node:
            if node.op_type == 'Constant':
                continue
            a = attrs(node)
            ins = [env[i] if i else None for i in node.input]
            op = node.op_type
            if op == 'QuantizeLinear':
                zp = ins[2] if len(ins) > 2 else np.array(0, np.uint8)
                # The graph's input is float32 data, which QuantizeLinear divides in float32: preprocessing such
                # as x / 127.5 - 1 against a scale of 2 / 255 puts many x / scale next to a .5 tie that the
                # float32 quotient decides (in double, 12% of MobileNet v1's input integers came out otherwise).
                y = quantize(ins[0], ins[1], zp, a.get('axis', 1), in_float32=node.input[0] == self.input)
            elif op == 'DequantizeLinear':
                zp = ins[2] if len(ins) > 2 else np.array(0, ins[0].dtype)
                y = dequantize(ins[0].astype(np.float64), ins[1], zp, a.get('axis', 1))
            elif op == 'Conv':
                y = conv(ins[0], ins[1].astype(np.float64), None if len(ins) < 3 else ins[2].astype(np.float64), a)
            elif op == 'Gemm':
                A = ins[0].T if a.get('transA', 0) else ins[0]
                B = ins[1].astype(np.float64)
                B = B.T if a.get('transB', 0) else B
                y = a.get('alpha', 1.0) * (A @ B)
                if len(ins) > 2 and ins[2] is not None:
                    y = y + a.get('beta', 1.0) * ins[2].astype(np.float64)
            elif op == 'Relu':
                y = np.maximum(ins[0], 0)
            elif op == 'LeakyRelu':
                alpha = np.float64(np.float32(a.get('alpha', 0.01)))  # the attribute is a float32
                y = np.where(ins[0] >= 0, ins[0], alpha * ins[0])
            elif op == 'Clip':
                lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
                hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
                y = np.clip(ins[0], np.float64(lo), np.float64(hi))
            elif op == 'Add':
                y = ins[0] + ins[1].astype(np.float64)
            elif op == 'MaxPool':
                y = max_pool(ins[0], a)
            elif op == 'GlobalAveragePool':
                y = ins[0].mean(axis=tuple(range(2, ins[0].ndim)), keepdims=True)
            elif op == 'Flatten':
                axis = a.get('axis', 1)
                y = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
            elif op == 'Identity':
                y = ins[0]
            else:
                raise ValueError('node %s: op %s is not supported by onnx_float64.py' % (node.name, op))
            env[node.output[0]] = y
        return env[self.output].reshape(-1)


def main():
    args = sys.argv[1:]
    if len(args) not in (2, 4) or (len(args) == 4 and args[2] != '--images'):
        sys.exit(__doc__.split('\n')[0])
    model_path, prefix = args[:2]
    index = json.load(open(prefix + '.json'))
    shape = index['input_shape']
    count = len(index['images']) if len(args) == 2 else min(int(args[3]), len(index['images']))
    classes = index['classes']
    inputs = np.memmap(prefix + '.inputs', np.float32, 'r').reshape(-1, *shape[1:])
    evaluator = Evaluator(model_path)
    exact = np.zeros((count, classes), np.float64)
    start = time.time()
    for i in range(count):
        exact[i] = evaluator.run(np.asarray(inputs[i:i + 1]))
        if (i + 1) % max(1, count // 10) == 0:
            print('float64: %d/%d images, %.0f s' % (i + 1, count, time.time() - start), file=sys.stderr)
    runs = {'float64': exact}
    for name, suffix in (('octet', '.logits'), ('ort', '.ort-logits')):
        try:
            runs[name] = np.fromfile(prefix + suffix, np.float32).reshape(-1, classes)[:count].astype(np.float64)
        except FileNotFoundError:
            pass
    top1 = {name: v.argmax(1) for name, v in runs.items()}
    result = {'images': count}
    labels = np.array(index['labels'][:count])
    if labels.size:
        for name, t in top1.items():
            result[name + '_top1_pct'] = round(100 * float((t == labels).mean()), 2)
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            result['%s_%s_agreement_pct' % (a, b)] = round(100 * float((top1[a] == top1[b]).mean()), 2)
    for name in names[1:]:
        noise = ((runs[name] - exact) ** 2).sum()
        result[name + '_sqnr_vs_float64_db'] = round(10 * np.log10((exact ** 2).sum() / noise), 2) if noise else 'inf'
    print(json.dumps(result))


if __name__ == '__main__':
    main()
