"""File formats the PyTorch twin shares with lockstep, read and written with numpy only.

- safetensors: an 8-byte little-endian header length, a JSON header mapping each name to
  {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that follows), and
  an optional "__metadata__" entry; the data is little-endian and row-major.
- IDX (MNIST, Fashion-MNIST): big-endian, two zero bytes, type byte 0x08 (unsigned byte),
  number of dimensions d, d uint32 sizes, then the bytes; gzip-compressed or not.
- Fashion-MNIST normalisation exactly as lockstep's data::kFashionMnistNormalize: a 256-entry
  float32 table, x = float32(v) / 255, then (x - 0.2860) / 0.3530, each step one float32
  operation (IEEE, correctly rounded), so every pixel has the bits lockstep gives it.
"""
import gzip
import json
import os
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}
_NAMES = {np.dtype(v).str: k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """{name: numpy array} of a safetensors file; raises ValueError naming the file and field."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ValueError(f"{path}: header length {hlen} runs past the end of the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = memoryview(blob)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: {name}: unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        dt = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: {name}: data_offsets {begin}..{end} do not hold shape {info['shape']}")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"]).astype(dt.newbyteorder("="))
    return out


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: numpy array} (float32/float64/int64/uint8) as safetensors, names sorted."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name], order="C")  # keeps 0-d arrays 0-d (ascontiguousarray would not)
        key = a.dtype.newbyteorder("<").str if a.dtype.byteorder != "|" else a.dtype.str
        if key not in _NAMES:
            raise ValueError(f"{path}: {name}: cannot store dtype {a.dtype}")
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[key], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)


def read_idx(path, expected_dims):
    """uint8 array of an IDX file (gzip or raw) with `expected_dims` dimensions."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = blob[3]
    if dims != expected_dims:
        raise ValueError(f"{path}: expected {expected_dims} dimensions, got {dims}")
    shape = struct.unpack(">" + "I" * dims, blob[4:4 + 4 * dims])
    data = np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes), data has {data.size}")
    return data.reshape(shape)


def mnist_file(directory, split, labels):
    stem = ("train" if split == "train" else "t10k") + ("-labels-idx1-ubyte" if labels else "-images-idx3-ubyte")
    gz = os.path.join(directory, stem + ".gz")
    return gz if os.path.exists(gz) else os.path.join(directory, stem)


def fashion_mnist_table():
    """The 256 float32 values lockstep maps pixel bytes to (kFashionMnistNormalize)."""
    x = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return (x - np.float32(0.2860)) / np.float32(0.3530)


def load_split(directory, split, subset=0):
    """(images float32 [N, 784] normalised as lockstep does, labels int64 [N]); first `subset` if > 0."""
    images = read_idx(mnist_file(directory, split, False), 3)
    labels = read_idx(mnist_file(directory, split, True), 1).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{directory}: {split} images and labels disagree: {images.shape[0]} vs {labels.shape[0]}")
    if subset > 0:
        images, labels = images[:subset], labels[:subset]
    x = fashion_mnist_table()[images.reshape(images.shape[0], -1)]
    return x, labels
