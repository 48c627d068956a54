"""Tensors out of a ``torch.save`` zip checkpoint without running its pickle.

A torch checkpoint is a zip: ``<name>/data.pkl`` (the object tree, pickled) plus one stored entry per tensor
storage (``<name>/data/<key>``). Unpickling ``data.pkl`` the normal way imports and calls whatever the pickle
names, which is how a tampered file runs code. Here the pickle is only *read*: :func:`walk_pickle` decodes its
opcodes with ``pickletools`` and replays them on a small stack machine that builds plain containers, records
every global as a :class:`Global` name and every call or object construction as an :class:`Opaque` record.
Nothing is imported and nothing named in the file is ever called. Tensor rebuilds become :class:`TensorRef`
records; :meth:`TorchZip.tensor` checks them against the zip entry they point to and reads only those bytes.
"""

from __future__ import annotations

import os
import pickletools
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

MAX_PICKLE_BYTES = 512 * 2**20  # the object tree of the 11 GB release is a few MB; refuse absurd ones unread
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (skipped fields), name length, extra length
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}  # fmt: skip
_TENSOR_REBUILD = ("torch._utils", "_rebuild_tensor_v2")
_PARAMETER_REBUILD = ("torch._utils", "_rebuild_parameter")
_ORDERED_DICT = ("collections", "OrderedDict")


class CheckpointFormatError(ValueError):
    """The file is not a checkpoint this reader accepts; the message is one line."""


@dataclass(frozen=True)
class Global:
    """A global the pickle names (``module.name``); never imported."""

    module: str
    name: str


@dataclass(eq=False)
class Opaque:
    """What the pickle would build by calling ``func(*args)``, kept as inert data (never built)."""

    func: Any
    args: Any
    state: Any = None
    items: list[Any] = field(default_factory=list)  # SETITEMS/APPENDS addressed to it, as (key, value) or value


@dataclass(frozen=True)
class StorageRef:
    key: str
    dtype: torch.dtype
    numel: int
    location: str


@dataclass(frozen=True)
class TensorRef:
    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


_CONSTANTS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BYTEARRAY8",
}  # fmt: skip
_SIMPLE = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_EMPTY = {"EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_SET": set}


class _Machine:
    """The pickle stack machine with every call replaced by a record."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []  # stack heights at each MARK (pickle's own metastack, as indices)
        self.memo: dict[int, Any] = {}

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise CheckpointFormatError("pickle pops a mark it never set")
        i = self.marks.pop()
        if i > len(self.stack):
            raise CheckpointFormatError("pickle pops below its last mark")
        items = self.stack[i:]
        del self.stack[i:]
        return items

    def step(self, name: str, arg: Any) -> None:
        st = self.stack
        if name in _CONSTANTS:
            st.append(arg)
        elif name in _SIMPLE:
            st.append(_SIMPLE[name])
        elif name in _EMPTY:
            st.append(_EMPTY[name]())
        elif name == "EMPTY_TUPLE":
            st.append(())
        elif name == "MARK":
            self.marks.append(len(st))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(st[-n:])
            del st[-n:]
            st.append(items)
        elif name in ("TUPLE", "LIST", "FROZENSET", "DICT"):
            items = self.pop_mark()
            st.append(_from_items(name, items))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = st[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = st[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in self.memo:
                raise CheckpointFormatError(f"pickle reads memo slot {arg} it never wrote")
            st.append(self.memo[int(arg)])
        else:
            self.step_objects(name, arg)

    def step_objects(self, name: str, arg: Any) -> None:
        st = self.stack
        if name in ("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"):
            if name in ("APPENDS", "SETITEMS", "ADDITEMS"):
                items = self.pop_mark()
            else:
                items = st[-2:] if name == "SETITEM" else st[-1:]
                del st[-len(items) :]
            _add_items(st[-1], name, items)
        elif name == "GLOBAL":
            module, _, gname = str(arg).partition(" ")
            st.append(Global(module, gname))
        elif name == "STACK_GLOBAL":
            module, gname = st[-2], st[-1]
            del st[-2:]
            if not isinstance(module, str) or not isinstance(gname, str):
                raise CheckpointFormatError("pickle names a global with something that is not a string")
            st.append(Global(module, gname))
        elif name == "REDUCE":
            func, args = st[-2], st[-1]
            del st[-2:]
            st.append(_reduce(func, args))
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            n = 3 if name == "NEWOBJ_EX" else 2
            func, *args = st[-n:]
            del st[-n:]
            st.append(Opaque(func, tuple(args)))
        elif name == "BUILD":
            state = st.pop()
            if isinstance(st[-1], Opaque):
                st[-1].state = state  # an OrderedDict's BUILD (state-dict metadata) is simply dropped
        elif name == "BINPERSID":
            st.append(_storage_ref(st.pop()))
        elif name in ("INST", "OBJ"):
            items = self.pop_mark()
            func = Global(*str(arg).split(" ", 1)) if name == "INST" else (items.pop(0) if items else None)
            st.append(Opaque(func, tuple(items)))
        elif name in ("EXT1", "EXT2", "EXT4"):
            st.append(Global("copyreg-extension", str(arg)))
        elif name == "POP":
            if self.marks and self.marks[-1] == len(st):
                self.pop_mark()  # POP right after MARK discards the mark, as pickle does
            else:
                st.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            st.append(st[-1])
        elif name in ("PROTO", "FRAME", "STOP"):
            pass
        else:  # PERSID (text ids), out-of-band buffers: torch never writes them
            raise CheckpointFormatError(f"pickle opcode {name} is not one torch.save writes")


def _from_items(name: str, items: list[Any]) -> Any:
    if name == "TUPLE":
        return tuple(items)
    if name == "LIST":
        return items
    if name == "FROZENSET":
        return frozenset(items)
    if len(items) % 2:
        raise CheckpointFormatError("pickle builds a dict from an odd number of items")
    return dict(zip(items[::2], items[1::2], strict=True))


def _add_items(target: Any, name: str, items: list[Any]) -> None:
    if name in ("SETITEM", "SETITEMS"):
        if len(items) % 2:
            raise CheckpointFormatError("pickle sets dict items from an odd number of values")
        pairs = list(zip(items[::2], items[1::2], strict=True))
        if isinstance(target, dict):
            target.update(pairs)
        elif isinstance(target, Opaque):
            target.items.extend(pairs)
        else:
            raise CheckpointFormatError(f"pickle sets items on a {type(target).__name__}")
    elif isinstance(target, list) and name != "ADDITEMS":
        target.extend(items)
    elif isinstance(target, set) and name == "ADDITEMS":
        target.update(items)
    elif isinstance(target, Opaque):
        target.items.extend(items)
    else:
        raise CheckpointFormatError(f"pickle adds items to a {type(target).__name__}")


def _reduce(func: Any, args: Any) -> Any:
    if not isinstance(args, tuple):
        raise CheckpointFormatError("pickle calls something with arguments that are not a tuple")
    key = (func.module, func.name) if isinstance(func, Global) else None
    if key == _TENSOR_REBUILD:
        return _tensor_ref(args)
    if key == _PARAMETER_REBUILD and args and isinstance(args[0], TensorRef):
        return args[0]
    if key == _ORDERED_DICT and args == ():
        return {}
    return Opaque(func, args)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _storage_ref(pid: Any) -> StorageRef:
    ok = isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], Global)
    if not ok or not (isinstance(pid[2], str) and isinstance(pid[3], str) and _is_int(pid[4]) and pid[4] >= 0):
        raise CheckpointFormatError("a tensor storage reference is malformed")
    storage_type: Global = pid[1]
    dtype = _STORAGE_DTYPES.get(storage_type.name) if storage_type.module == "torch" else None
    if dtype is None:
        raise CheckpointFormatError(f"tensor storage type {storage_type.module}.{storage_type.name} is not supported")
    if not pid[2].isalnum():
        raise CheckpointFormatError(f"tensor storage key {pid[2]!r} is not a plain name")
    return StorageRef(key=pid[2], dtype=dtype, numel=pid[4], location=pid[3])


def _tensor_ref(args: tuple[Any, ...]) -> TensorRef:
    if len(args) < 4 or not isinstance(args[0], StorageRef):
        raise CheckpointFormatError("a tensor rebuild has no storage")
    storage, offset, size, stride = args[:4]
    sizes_ok = isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
    if not (_is_int(offset) and sizes_ok and all(_is_int(v) and v >= 0 for v in (offset, *size, *stride))):
        raise CheckpointFormatError("a tensor rebuild has a malformed offset, size or stride")
    if all(size) and offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) >= storage.numel:
        raise CheckpointFormatError(f"a tensor reaches past the end of its storage {storage.key}")
    return TensorRef(storage, offset, size, stride)


def walk_pickle(data: bytes) -> Any:
    """The object tree a pickle describes, with globals as :class:`Global` and calls as :class:`Opaque`."""
    machine = _Machine()
    try:
        for op, arg, _pos in pickletools.genops(data):
            machine.step(op.name, arg)
    except CheckpointFormatError:
        raise
    except (ValueError, IndexError, TypeError, KeyError, RecursionError) as e:  # truncated, unhashable keys
        raise CheckpointFormatError(f"the pickle inside is damaged ({e.__class__.__name__}: {e})") from None
    if len(machine.stack) != 1:
        raise CheckpointFormatError("the pickle inside is damaged (it does not end with one object)")
    return machine.stack[0]


class TorchZip:
    """A ``torch.save`` zip checkpoint opened for reading: ``root`` (the walked object tree), ``tensor(ref)``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise CheckpointFormatError(f"not a PyTorch zip checkpoint, or truncated ({e})") from None
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        self._size = os.fstat(self._file.fileno()).st_size
        try:
            pkl = [n for n in self._zip.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkl) != 1:
                raise CheckpointFormatError("not a PyTorch zip checkpoint (no single <name>/data.pkl inside)")
            self.prefix = pkl[0][: -len("data.pkl")]
            order = self._read_small(self.prefix + "byteorder", default=b"little")
            if order != b"little":
                raise CheckpointFormatError(f"tensors are stored {order.decode(errors='replace')}-endian")
            info = self._zip.getinfo(pkl[0])
            if info.file_size > MAX_PICKLE_BYTES:
                raise CheckpointFormatError(f"its object tree is {info.file_size} bytes; not a model checkpoint")
            self.root = walk_pickle(bytes(self._entry_bytes(info)))
        except BaseException:
            self.close()
            raise

    def _read_small(self, name: str, default: bytes) -> bytes:
        try:
            return self._entry_bytes(self._zip.getinfo(name)).strip()
        except KeyError:
            return default

    def _entry_span(self, info: zipfile.ZipInfo) -> tuple[int, int]:
        """(start, length) of a stored entry's bytes in the file, checked against the file's size."""
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointFormatError(f"{info.filename} is compressed; torch.save never compresses")
        head = os.pread(self._file.fileno(), _LOCAL_HEADER.size, info.header_offset)
        if len(head) < _LOCAL_HEADER.size:
            raise CheckpointFormatError(f"truncated file ({info.filename} lies past its end)")
        sig, name_len, extra_len = _LOCAL_HEADER.unpack(head)
        if sig != b"PK\x03\x04":
            raise CheckpointFormatError(f"damaged zip (no header for {info.filename})")
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        if start + info.file_size > self._size:
            raise CheckpointFormatError(f"truncated file ({info.filename} lies past its end)")
        return start, info.file_size

    def _entry_bytes(self, info: zipfile.ZipInfo) -> bytearray:
        """The entry's bytes, read straight into memory of their own (no file mapping left behind)."""
        start, n = self._entry_span(info)
        buf = bytearray(n)
        self._file.seek(start)
        if self._file.readinto(buf) != n:
            raise CheckpointFormatError(f"truncated file ({info.filename} lies past its end)")
        return buf

    def tensor(self, ref: TensorRef) -> torch.Tensor:
        """The tensor ``ref`` describes, on the CPU, in memory of its own (the storage entry is read alone)."""
        name = f"{self.prefix}data/{ref.storage.key}"
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            raise CheckpointFormatError(f"tensor storage {name} is missing from the zip") from None
        itemsize = torch.empty((), dtype=ref.storage.dtype).element_size()
        if info.file_size != ref.storage.numel * itemsize:
            raise CheckpointFormatError(
                f"tensor storage {name} holds {info.file_size} bytes, not the {ref.storage.numel * itemsize} "
                "its reference says"
            )
        data = self._entry_bytes(info)
        flat = torch.frombuffer(data, dtype=ref.storage.dtype) if data else torch.empty(0, dtype=ref.storage.dtype)
        view = flat.as_strided(ref.size, ref.stride, ref.offset)
        # a tensor that is its whole storage, in order, keeps the one copy just read; a view into a larger one is cut
        return view if ref.offset == 0 and view.numel() == flat.numel() and view.is_contiguous() else view.clone()

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
        self._zip.close()

    def __enter__(self) -> TorchZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- omegaconf configs as plain data

_OMEGACONF_VALUE_NODES = {"AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode",
                          "PathNode", "EnumNode"}  # fmt: skip


def plain_config(node: Any, _depth: int = 0) -> Any:
    """A pickled omegaconf ``DictConfig``/``ListConfig`` tree (as walked) -> dicts, lists and plain values.

    Interpolations stay as their ``${...}`` strings; anything that is neither a container, a value node nor
    plain data becomes ``None``.
    """
    if _depth > 64:
        raise CheckpointFormatError("the config inside nests deeper than any real one")
    if isinstance(node, dict):
        return {k: plain_config(v, _depth + 1) for k, v in node.items() if isinstance(k, str | int)}
    if isinstance(node, list | tuple):
        return [plain_config(v, _depth + 1) for v in node]
    if isinstance(node, str | int | float | bool) or node is None:
        return node
    if not (isinstance(node, Opaque) and isinstance(node.func, Global) and node.func.module.startswith("omegaconf")):
        return None
    state = node.state if isinstance(node.state, dict) else {}
    if node.func.name in ("DictConfig", "ListConfig"):
        return plain_config(state.get("_content"), _depth + 1)
    if node.func.name in _OMEGACONF_VALUE_NODES:
        return plain_config(state.get("_val"), _depth + 1)
    return None
