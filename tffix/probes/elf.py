"""A small ELF reader: the dynamic section of a shared library (SONAME, NEEDED, RPATH, RUNPATH).

The loader probe needs to know where TensorFlow's own libraries tell the dynamic loader to look
(``DT_RUNPATH``, or the older ``DT_RPATH``). This reads exactly that, the way ``ld.so`` does:
through the program headers (``PT_DYNAMIC`` for the entries, ``PT_LOAD`` to turn the string
table's address into a file offset), so a library stripped of its section headers still reads.

``parse_dynamic`` is pure (bytes in, facts out); ``read_dynamic`` reads only as much of the
file as the headers point at, because TensorFlow's libraries are hundreds of MiB.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from tffix.record import record

_PT_LOAD = 1
_PT_DYNAMIC = 2
_DT_NULL = 0
_DT_NEEDED = 1
_DT_STRTAB = 5
_DT_SONAME = 14
_DT_RPATH = 15
_DT_RUNPATH = 29

_MAX_HEADERS = 4096
"""More program headers than any real library has; a larger count means a corrupt file."""
_MAX_DYNAMIC_BYTES = 1024 * 1024
_MAX_STRING = 64 * 1024


class ElfError(ValueError):
    """The file is not an ELF shared object this reader understands (text says why)."""


@record
class ElfDynamic:
    """The dynamic-section facts of one ELF file."""

    soname: str | None = None
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    """``DT_RPATH`` entries, unexpanded (searched before ``LD_LIBRARY_PATH``, only when there
    is no ``DT_RUNPATH``)."""
    runpath: tuple[str, ...] = ()
    """``DT_RUNPATH`` entries, unexpanded (searched after ``LD_LIBRARY_PATH``)."""
    machine: int | None = None
    """``e_machine`` (62 = x86-64, 183 = AArch64)."""


Reader = Callable[[int, int], bytes]
"""``read(offset, size) -> bytes`` (fewer bytes at end of file)."""


def _split_path(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(value.split(":"))  # an empty entry is the current folder (glibc)


@record
class _Header:
    bits: int
    machine: int
    phoff: int
    phentsize: int
    phnum: int
    ph_fmt: str
    dyn_fmt: str


def _header(read: Reader) -> _Header:
    """The ELF header fields the dynamic section is found with."""
    ident = read(0, 16)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    bits = {1: 32, 2: 64}.get(ident[4])
    order = {1: "<", 2: ">"}.get(ident[5])
    if bits is None or order is None:
        raise ElfError("unknown ELF class or byte order")
    if bits == 64:
        header = read(0, 64)
        if len(header) < 64:
            raise ElfError("truncated ELF header")
        machine = struct.unpack_from(order + "H", header, 18)[0]
        phoff = struct.unpack_from(order + "Q", header, 32)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        ph_fmt, dyn_fmt = order + "IIQQQQQQ", order + "qQ"
    else:
        header = read(0, 52)
        if len(header) < 52:
            raise ElfError("truncated ELF header")
        machine = struct.unpack_from(order + "H", header, 18)[0]
        phoff = struct.unpack_from(order + "I", header, 28)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
        ph_fmt, dyn_fmt = order + "IIIIIIII", order + "iI"
    return _Header(bits, machine, phoff, phentsize, phnum, ph_fmt, dyn_fmt)


def _segments(
    read: Reader, h: _Header
) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """The loaded segments (vaddr, offset, filesz) and the dynamic one (offset, filesz)."""
    if h.phnum == 0 or h.phnum > _MAX_HEADERS or h.phentsize < struct.calcsize(h.ph_fmt):
        raise ElfError("no usable program headers")
    table = read(h.phoff, h.phentsize * h.phnum)
    if len(table) < h.phentsize * h.phnum:
        raise ElfError("truncated program headers")
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None  # (offset, filesz)
    for i in range(h.phnum):
        fields = struct.unpack_from(h.ph_fmt, table, i * h.phentsize)
        if h.bits == 64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    return loads, dynamic


def parse_dynamic_from(read: Reader) -> ElfDynamic:
    """Read the dynamic section through *read*; raise ``ElfError`` for anything malformed."""
    h = _header(read)
    machine, dyn_fmt = h.machine, h.dyn_fmt
    loads, dynamic = _segments(read, h)
    if dynamic is None:
        return ElfDynamic(machine=machine)  # a static object: nothing to resolve

    size = min(dynamic[1], _MAX_DYNAMIC_BYTES)
    data = read(dynamic[0], size)
    entry = struct.calcsize(dyn_fmt)
    entries: list[tuple[int, int]] = []
    for pos in range(0, len(data) - entry + 1, entry):
        tag, value = struct.unpack_from(dyn_fmt, data, pos)
        if tag == _DT_NULL:
            break
        entries.append((tag, value))

    strtab_addr = next((v for t, v in entries if t == _DT_STRTAB), None)
    if strtab_addr is None:
        raise ElfError("dynamic section without a string table")
    strtab_off = None
    for vaddr, offset, filesz in loads:
        if vaddr <= strtab_addr < vaddr + filesz:
            strtab_off = offset + (strtab_addr - vaddr)
            break
    if strtab_off is None:
        raise ElfError("string table outside every loaded segment")

    def string(index: int) -> str:
        raw = read(strtab_off + index, _MAX_STRING)
        end = raw.find(b"\0")
        return (raw if end < 0 else raw[:end]).decode("utf-8", "replace")

    soname = None
    needed: list[str] = []
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    for tag, value in entries:
        if tag == _DT_NEEDED:
            needed.append(string(value))
        elif tag == _DT_SONAME:
            soname = string(value)
        elif tag == _DT_RPATH:
            rpath += _split_path(string(value))
        elif tag == _DT_RUNPATH:
            runpath += _split_path(string(value))
    return ElfDynamic(
        soname=soname, needed=tuple(needed), rpath=rpath, runpath=runpath, machine=machine
    )


def parse_dynamic(data: bytes) -> ElfDynamic:
    """Parse an ELF file held in memory."""
    return parse_dynamic_from(lambda offset, size: data[offset : offset + size])


def read_dynamic(path: str | os.PathLike[str]) -> ElfDynamic:
    """Read *path*'s dynamic section; ``OSError`` if unreadable, ``ElfError`` if not ELF."""
    with open(path, "rb") as handle:

        def read(offset: int, size: int) -> bytes:
            handle.seek(offset)
            return handle.read(size)

        return parse_dynamic_from(read)


def expand_origin(entries: tuple[str, ...], origin: str) -> tuple[str, ...]:
    """Replace ``$ORIGIN``/``${ORIGIN}`` with *origin* (the library's folder), normalised."""
    out = []
    for entry in entries:
        value = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        out.append(os.path.normpath(value))
    return tuple(out)
