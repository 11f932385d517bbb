"""Ways to damage a file saved by torch.save, for the tests of the caches that must notice."""

import struct
import zipfile

import torch


def flip_a_byte_inside_the_largest_tensor(path):
    """Flip one byte in the middle of the zip's largest entry (a tensor's data), its structure intact."""
    with zipfile.ZipFile(path) as archive:
        entry = max(archive.infolist(), key=lambda info: info.file_size)
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", raw[entry.header_offset + 26 : entry.header_offset + 30])
    raw[entry.header_offset + 30 + name_length + extra_length + entry.file_size // 2] ^= 0x5A
    path.write_bytes(bytes(raw))


def rewrite(path, change):
    """Load the file, change(payload) in place, save it back under the same name."""
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)
