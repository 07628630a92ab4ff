"""What the checks need, derived once from a (possibly very partial) snapshot and the rules.

Pure. ``Facts`` is the one reading of a snapshot every cause's detection and fix share; the
version helpers parse the loose version text found in snapshots and logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from packaging.version import InvalidVersion, Version

from tffix.lazyre import lazy
from tffix.logparse import LogFacts
from tffix.model import Driver, Library, Snapshot, TensorFlowInfo
from tffix.normalize import normalize_gpu, pinned_requirements
from tffix.pkgname import canonicalize_name
from tffix.ruleset import Release, Ruleset

SCHEDULER_VARIABLES = {
    "SLURM_JOB_ID": "slurm",
    "SLURM_JOBID": "slurm",
    "KUBERNETES_SERVICE_HOST": "kubernetes",
    "RAY_JOB_ID": "ray",
    "RAY_ADDRESS": "ray",
}
SYSTEM_CUDA = lazy(r"/cuda(-(?P<version>\d+(\.\d+)?))?(/|$)")


def parse_version(text: str | None) -> Version | None:
    """``Version(text)`` or None for missing or unparsable text (``"470.."`` -> 470)."""
    if not text:
        return None
    cleaned = re.match(r"\d+(\.\d+)*", text.strip())
    if not cleaned:
        return None
    try:
        return Version(cleaned.group(0))
    except InvalidVersion:
        return None


def major_minor(text: str | None) -> str | None:
    """``3.11`` for ``3.11.7``."""
    version = parse_version(text)
    if version is None:
        return None
    return f"{version.major}.{version.minor}"


def cc_tuple(text: str | None) -> tuple[int, int] | None:
    """``(8, 6)`` for ``"8.6"`` or ``"sm_86"``/``"compute_86"``."""
    if not text:
        return None
    text = text.strip()
    arch = re.fullmatch(r"(?:sm|compute)_(\d+?)(\d)a?", text)
    if arch:
        return int(arch.group(1)), int(arch.group(2))
    dotted = re.fullmatch(r"(\d+)\.(\d+)", text)
    if dotted:
        return int(dotted.group(1)), int(dotted.group(2))
    return None


# --------------------------------------------------------------------------- derived facts


@dataclass(frozen=True)
class Facts:
    """What the checks need, derived once from a snapshot and the rules."""

    snap: Snapshot
    rules: Ruleset
    log: LogFacts = field(default_factory=LogFacts)

    # ---- platform
    @cached_property
    def os(self) -> str | None:
        return self.snap.platform.os

    @cached_property
    def linux(self) -> bool:
        return self.os == "linux"

    @cached_property
    def container(self) -> str | None:
        value = self.snap.platform.container
        return value if isinstance(value, str) and value else None

    @cached_property
    def scheduler(self) -> str | None:
        value = self.snap.platform.scheduler
        if isinstance(value, str) and value:
            return value
        for name, sched in SCHEDULER_VARIABLES.items():
            if name in self.snap.env:
                return sched
        return None

    @cached_property
    def jetson(self) -> bool:
        if self.snap.platform.jetson:
            return True
        names = " ".join(g.name or "" for g in self.snap.gpus or ())
        kernel = self.snap.platform.kernel or ""
        return bool(re.search(r"jetson|orin|xavier", names, re.I)) or "tegra" in kernel

    @cached_property
    def python(self) -> str | None:
        return major_minor(self.snap.python.version)

    # ---- packages
    @cached_property
    def packages(self) -> Mapping[str, str]:
        """The snapshot's packages, and exact pins the log shows on lines of their own (a
        ``pip freeze`` row, a requirements or pyproject line) for names it does not list."""
        listed = dict(self.snap.packages or {})
        for name, (version, _index) in self.log_pins.items():
            listed.setdefault(name, version)
        return listed

    @cached_property
    def log_pins(self) -> Mapping[str, tuple[str, int]]:
        """Exact pins on log lines of their own that the snapshot's packages do not list:
        name -> (version, line index)."""
        listed = self.snap.packages or {}
        pins = pinned_requirements(self.snap.log)
        return {n: v for n, v in pins.items() if n not in listed}

    @cached_property
    def optional_sonames(self) -> frozenset[str] | None:
        """Sonames the loader probe looked up that TensorFlow opens only for some work (NCCL,
        nvJitLink); None when no loader probe ran (a pasted report)."""
        loader = self.snap.extra.get("loader")
        if not isinstance(loader, Mapping):
            return None
        return frozenset(str(s) for s in loader.get("optional", ()))

    @cached_property
    def device_nodes(self) -> tuple[str, ...] | None:
        """``/dev/nvidia*`` names (``nvidia0``, ``nvidia-uvm``), when the probe listed them."""
        nodes = self.snap.extra.get("device_nodes")
        if not isinstance(nodes, list):
            return None
        return tuple(str(n).rsplit("/", 1)[-1] for n in nodes)

    @cached_property
    def packages_complete(self) -> bool:
        """True when ``packages`` looks like a whole ``pip list`` rather than a pasted excerpt."""
        if self.snap.packages is None:
            return False
        if self.snap.extra.get("packages_complete") is True:
            return True
        if self.snap.extra.get("packages_source") in {"metadata", "pip-api"}:
            return True  # the live probe read every installed distribution
        return "numpy" in self.packages or len(self.packages) >= 12

    def has(self, name: str) -> bool:
        return canonicalize_name(name) in self.packages

    @cached_property
    def tf_dists(self) -> tuple[str, ...]:
        names = {canonicalize_name(n) for n in self.rules.policy.tf_distributions}
        return tuple(sorted(n for n in self.packages if n in names))

    @cached_property
    def tf_channels(self) -> dict[str, tuple[str, str]]:
        """TensorFlow distribution -> (channel, evidence) of a pasted ``conda list`` row naming
        it: name, version, build string and channel (``conda-forge``, ``defaults``, ``pypi``
        for one pip installed), as conda prints them."""
        names = {canonicalize_name(n) for n in self.rules.policy.tf_distributions}
        out: dict[str, tuple[str, str]] = {}
        for i, line in enumerate(self.snap.log):
            m = _CONDA_ROW.match(line[:256])
            if m and (name := canonicalize_name(m["name"])) in names:
                out.setdefault(name, (m["channel"], f"log[{i}]"))
        return out

    @cached_property
    def tf_dist(self) -> str | None:
        """The distribution that provides TensorFlow (``tensorflow`` when several)."""
        for name in ("tensorflow", "tf-nightly", "tensorflow-gpu", "tensorflow-cpu"):
            if name in self.tf_dists:
                return name
        return self.tf_dists[0] if self.tf_dists else None

    @cached_property
    def tf(self) -> TensorFlowInfo | None:
        value = self.snap.tensorflow
        return value if isinstance(value, TensorFlowInfo) else None

    @cached_property
    def tf_version(self) -> str | None:
        if self.tf is not None and self.tf.version:
            return self.tf.version
        if self.tf_dist is not None:
            return self.packages[self.tf_dist]
        if self.image_tf_version is not None:
            return self.image_tf_version[0]
        return None

    @cached_property
    def tf_version_evidence(self) -> str:
        if self.tf is not None and self.tf.version:
            return "tensorflow.version"
        pin = self.log_pins.get(self.tf_dist) if self.tf_dist else None
        if pin is not None:
            return f"log[{pin[1]}]"
        if self.tf_dist is None and self.image_tf_version is not None:
            return self.image_tf_version[1]
        return f"packages.{self.tf_dist}" if self.tf_dist else "tensorflow.version"

    @cached_property
    def image_tf_version(self) -> tuple[str, str] | None:
        """(version, evidence) of the TensorFlow release an official TensorFlow Docker image
        named in the log carries: its tags are the release, then variants
        (``tensorflow/tensorflow:2.5.0-gpu``, ``:1.15.5-gpu-py3``, ``:2.4.1-gpu-jupyter``;
        ``latest`` and ``nightly`` name no release). Only one release may be named: a report
        that tried several images does not say which one ran."""
        found = [
            (m["v"].replace("-rc", "rc"), i)
            for i, line in enumerate(self.snap.log)
            for m in _TF_IMAGE_TAG.finditer(line[:1024])
        ]
        if len({v for v, _i in found}) != 1:
            return None
        version, first = found[0]  # in log order: the first line that names it
        return version, f"log[{first}]"

    @cached_property
    def tf_v(self) -> Version | None:
        return parse_version(self.tf_version)

    @cached_property
    def release(self) -> Release | None:
        release = self.rules.release(self.tf_version)
        if release is None and self.tf_version and "+" in self.tf_version:
            release = self.rules.release(self.tf_version.split("+")[0])
        return release

    @cached_property
    def tf_cuda(self) -> str | None:
        """The CUDA version TensorFlow was built with, from the build info or the matrix."""
        build = self.tf.build if self.tf else None
        if build and build.cuda_version:
            windows = re.fullmatch(r"64_(\d+)(\d)", build.cuda_version)  # "64_112" = 11.2
            if windows:
                return f"{windows.group(1)}.{windows.group(2)}"
            if re.fullmatch(r"\d+(\.\d+)*", build.cuda_version):
                return build.cuda_version
        if self.release:
            return self.release.cuda
        line = self.rules.line_of(self.tf_version)
        return line.cuda if line else None

    @cached_property
    def tf_cuda_major(self) -> int | None:
        version = parse_version(self.tf_cuda)
        return version.major if version else None

    @cached_property
    def tf_cudnn(self) -> str | None:
        if self.release:
            return self.release.cudnn
        line = self.rules.line_of(self.tf_version)
        return line.cudnn if line else None

    @cached_property
    def is_cuda_build(self) -> bool | None:
        said = self.cuda_build_read
        return said[0] if said else None

    @cached_property
    def cuda_build_read(self) -> tuple[bool, str] | None:
        """(is a CUDA build, evidence): the build info, else what the report's own
        ``is_built_with_cuda()`` printed; None when neither says."""
        build = self.tf.build if self.tf else None
        if build and build.is_cuda_build is not None:
            return build.is_cuda_build, "tensorflow.build.is_cuda_build"
        return self.printed_answers.get("cuda_build")

    @cached_property
    def cuda_never_tried(self) -> tuple[str, ...]:
        """Evidence that the TensorFlow that ran never tried CUDA: the session maps no device
        ("Device mapping: no known devices"), TensorFlow's own INFO lines are shown (so the
        log level hides nothing), and no line of the log is about CUDA.

        A CUDA build prints at INFO or above, before a session exists, the outcome of its GPU
        setup whatever it is: the GPUs it found ("Found device 0 with properties"), a failed
        cuInit, the CUDA libraries it opened or could not (gpu_device.cc, cuda_driver.cc,
        dso_loader.cc); a build without CUDA has no such code."""
        mapped = self.log.first("no-gpu-device-mapped")
        if mapped is None:
            return ()
        info = None
        for i, line in enumerate(self.snap.log):
            text = line[:1024]
            if _ABOUT_CUDA.search(text):
                return ()
            if info is None and _TF_INFO_LINE.search(text):
                info = f"log[{i}]"
        return (mapped.evidence, info) if info is not None and info != mapped.evidence else ()

    @cached_property
    def tf_gpus(self) -> tuple[str, ...] | None:
        return self.tf.gpus if self.tf else None

    @cached_property
    def gpu_visible(self) -> bool | None:
        if self.tf_gpus is not None:
            return bool(self.tf_gpus)
        if self.snap.tensorflow is None or self.import_error:
            return False  # no TensorFlow to ask, or it does not import
        if self.log.has("gpu-listed"):
            return True
        said = self.printed_answers.get("gpus")
        if said is None and self.log.has("no-gpu-device-mapped"):
            return False  # the session's device mapping lists no GPU
        return said[0] if said else None

    @cached_property
    def printed_answers(self) -> Mapping[str, tuple[bool, str]]:
        """What the report's own runs of TensorFlow's checks printed: ``gpus`` (a GPU listed:
        ``list_physical_devices('GPU')`` answered ``[]``, ``is_gpu_available()`` ``False``,
        the GPU guide's "Num GPUs Available:  0") and ``cuda_build`` (``is_built_with_cuda()``),
        each with the line it was read from. The answer is the line after the call (a REPL, a
        notebook's ``Out[n]:``) or on the same line after a label."""
        out: dict[str, tuple[bool, str]] = {}
        log = self.snap.log
        for i, line in enumerate(log):
            text = line[:512]
            if m := _NUM_GPUS.search(text):
                out.setdefault("gpus", (int(m.group(1)) > 0, f"log[{i}]"))
                continue
            if m := _LABELLED_ANSWER.search(text):
                key = "cuda_build" if "built" in m.group("what").lower() else "gpus"
                out.setdefault(key, (m.group("value") not in ("False", "[]"), f"log[{i}]"))
                continue
            call = _GPU_CALL.search(text)
            if call is None:
                continue
            key = "cuda_build" if call.group(0).startswith("is_built") else "gpus"
            later = [j for j in range(i + 1, min(i + 3, len(log))) if log[j].strip()]
            if not later:
                continue
            answer = _ANSWER_LINE.fullmatch(log[later[0]].strip())
            if answer is not None:
                value = answer.group("value")
                out.setdefault(key, (value not in ("False", "[]"), f"log[{later[0]}]"))
        return out

    @cached_property
    def import_error(self) -> str | None:
        if self.tf is None:
            return None
        value = self.tf.import_error
        return value if isinstance(value, str) and value else None

    @cached_property
    def truncated_tf_import(self) -> tuple[str, str] | None:
        """(last frame's source line, evidence) of a traceback cut off inside ``import
        tensorflow``: its frames from ``tensorflow/__init__.py`` on all run at module level
        (``in <module>``) inside the installed tensorflow package, and no exception line
        follows. Python prints the frames outermost first and the exception last, so the
        import failed in the last module shown.

        None when the last frame loads TensorFlow's native library (a ``pywrap`` module): that
        failure is a shared library the loader could not open, which the library, driver and
        container checks read."""
        log = self.snap.log
        for i, line in enumerate(log):
            if not _TRACEBACK_HEAD.match(line[:512]):
                continue
            frames = _unfinished_frames(log, i)
            first = next((k for k, (f, _) in enumerate(frames) if _TF_PACKAGE_FILE.search(f)), None)
            tf_frames = frames[first:] if first is not None else []
            if not tf_frames or not _TF_INIT_FRAME.search(tf_frames[0][0]):
                continue
            if not all(
                _TF_PACKAGE_FILE.search(f) and f.rstrip().endswith("in <module>")
                for f, _ in tf_frames
            ):
                continue
            last_file, last_code = tf_frames[-1]
            if "pywrap" in last_file or "pywrap" in last_code:
                continue
            return last_code or last_file.strip(), f"log[{i}]"
        return None

    @cached_property
    def log_missing_tf(self) -> tuple[str, ...]:
        """Log lines where Python said it has no TensorFlow to import (``ModuleNotFoundError:
        No module named 'tensorflow'``; Python 2's ``No module named tensorflow``)."""
        return tuple(h.evidence for h in self.log.all("no-tf-module"))

    @cached_property
    def log_tf_installed(self) -> tuple[str, ...]:
        """Log lines of pip saying a TensorFlow distribution (the rules' ``tf_distributions``)
        is installed already."""
        names = {canonicalize_name(n) for n in self.rules.policy.tf_distributions}
        return tuple(
            f"log[{i}]"
            for i, line in enumerate(self.snap.log)
            if (m := _PIP_SATISFIED.search(line[:512])) and canonicalize_name(m["name"]) in names
        )

    # ---- driver and GPUs
    @cached_property
    def driver(self) -> Driver | None:
        value = self.snap.driver
        return value if isinstance(value, Driver) else None

    @cached_property
    def driver_absent(self) -> bool:
        """True when the snapshot says no driver answered (``driver: null``)."""
        return self.snap.driver is None

    @cached_property
    def gpu_ccs(self) -> tuple[tuple[int, str, tuple[int, int] | None], ...]:
        """(index, evidence, compute capability) per GPU, from the driver or the GPU name."""
        out = []
        for i, gpu in enumerate(self.snap.gpus or ()):
            cc = cc_tuple(gpu.compute_capability)
            where = f"gpus[{i}].compute_capability"
            if cc is None and gpu.name:
                # loose spellings too ("5070TI", "rtx50xx"): tffix.normalize reads the name
                cc = cc_tuple(normalize_gpu(gpu.name, self.rules).compute_capability)
                where = f"gpus[{i}].name"
            out.append((i, where, cc))
        return tuple(out)

    # ---- loose evidence (pasted text beside TensorFlow's own lines)
    @cached_property
    def cuda_toolkits(self) -> tuple[tuple[Version, str], ...]:
        """CUDA toolkit versions the report shows installed, with where each was read.

        nvcc's banner, an answer such as ``CUDA/cuDNN version: 11.1`` or ``cuda11.2``, a
        ``cuda-X.Y`` or ``CUDA\\vX.Y`` folder on a search path, conda's ``cudatoolkit``. The
        ``CUDA Version`` of an nvidia-smi header is the driver's ceiling, not a toolkit: skipped.
        """
        out: list[tuple[Version, str]] = []
        for i, line in enumerate(self.snap.log):
            text = line[:512]
            if _SMI_HEADER.search(text):
                continue
            m = (
                _NVCC.search(text)
                or _TEMPLATE_CUDA.search(text)
                or _IMAGE_BANNER.match(text)
                or _BARE_PAIR.match(text)
            )
            v = parse_version(m.group(1)) if m else None
            if v is None and (path := SYSTEM_CUDA.search(text)) and path.group("version"):
                v = parse_version(path.group("version"))  # a /usr/local/cuda-X.Y/ path shown
            if v is None and (win := _WIN_TOOLKIT.search(text)):
                v = parse_version(win.group("v"))  # a ...\CUDA\vX.Y\ folder shown
            if v is None and (row := _CONDA_CUDA_ROW.match(text)):
                v = parse_version(row.group("v"))  # a `conda list` row
            if v is not None and 6 <= v.major <= 13:
                out.append((v, f"log[{i}]"))
        for name in ("LD_LIBRARY_PATH", "PATH", "CUDA_HOME", "CUDA_PATH"):
            for entry in self.env_list(name):
                unix, win = SYSTEM_CUDA.search(entry), _WIN_TOOLKIT.search(entry)
                v = parse_version(
                    unix.group("version") if unix else win.group("v") if win else None
                )
                if v is not None and v.release[1:2]:
                    out.append((v, f"env.{name}"))
        for name in ("cudatoolkit", "cuda-toolkit", "cuda-runtime", "cuda-cudart"):
            v = parse_version(self.packages.get(name))
            if v is not None:
                out.append((v, f"packages.{name}"))
        return tuple(dict.fromkeys(out))

    @cached_property
    def cudnn_reported(self) -> tuple[tuple[Version, str], ...]:
        """cuDNN versions the report shows installed (an answer line, conda's ``cudnn``)."""
        out: list[tuple[Version, str]] = []
        for i, line in enumerate(self.snap.log):
            text = line[:512]
            if "Loaded runtime CuDNN" in text or "compiled with" in text:
                continue  # TensorFlow's own comparison line: the cudnn checks read it
            m = _TEMPLATE_CUDNN.search(text)
            v = parse_version(m.group("v") or m.group("pair")) if m else None
            if v is None and (bare := _BARE_PAIR.match(text)):
                v = parse_version(bare.group("cudnn"))
            if v is None and (row := _CONDA_CUDNN_ROW.match(text)):
                v = parse_version(row.group("v"))
            if v is not None and 2 <= v.major <= 9:
                out.append((v, f"log[{i}]"))
        v = parse_version(self.packages.get("cudnn"))
        if v is not None:
            out.append((v, "packages.cudnn"))
        return tuple(dict.fromkeys(out))

    @cached_property
    def failed_sonames(self) -> tuple[tuple[str, str], ...]:
        """(soname, evidence) of CUDA libraries the loader reports it could not open.

        Read from every line that names a CUDA library file together with one of the loader's
        own failure phrases (glibc's "cannot open shared object file", dyld's "Library not
        loaded"/"image not found", Windows' "DLL load failed", TensorFlow's "Could not load
        dynamic library"/"Could not dlopen library"/"Could not find 'X.dll'").
        """
        out: list[tuple[str, str]] = []
        for i, line in enumerate(self.snap.log):
            text = line[:1024]
            if "Successfully opened" in text or not _LOADER_FAILED.search(text):
                continue
            m = _CUDA_SONAME.search(text)
            if m:
                out.append((m.group("soname"), f"log[{i}]"))
        failed = self.import_failed_soname
        if failed is not None:
            m = _CUDA_SONAME.fullmatch(failed)
            if m and all(soname != failed for soname, _ in out):
                out.append((failed, "tensorflow.import_error"))
        return tuple(out)

    @cached_property
    def import_failed_soname(self) -> str | None:
        """The shared library whose load failed ``import tensorflow``, when the import error
        says one: CPython raises the ImportError of an extension module that cannot be loaded
        with dlerror()'s text (Python/dynload_shlib.c), which begins with the library's file
        name (``libcublas.so.9.0: cannot open shared object file``). A report that cut the
        text after the name (``ImportError: libcublas.so.9.0``) still names it."""
        if self.import_error is None:
            return None
        m = _IMPORT_SONAME.match(self.import_error.strip()[:1024])
        return m["soname"] if m else None

    @cached_property
    def cuda_source_lines(self) -> tuple[str, ...]:
        """Evidence of log lines printed from TensorFlow's CUDA platform code
        (``stream_executor/cuda/*.cc``: the CUDA driver, DNN, BLAS and FFT wrappers, in all of
        its places, ``tensorflow/``, ``tensorflow/compiler/xla/`` and ``xla/``), whatever the
        line says: that code is compiled only into CUDA builds, so such a line shows one ran."""
        return tuple(
            f"log[{i}]" for i, line in enumerate(self.snap.log) if _CUDA_SOURCE.search(line[:512])
        )

    @cached_property
    def libcuda_failed(self) -> tuple[str, ...]:
        """Evidence that the driver's ``libcuda.so.1`` could not be loaded: the log's lines
        (``libcuda-missing``), the import error naming it, the loader probe's answer."""
        out = [h.evidence for h in self.log.all("libcuda-missing")]
        if self.import_failed_soname == "libcuda.so.1":
            out.append("tensorflow.import_error")
        libcuda = self.snap.libraries.get("libcuda.so.1")
        if libcuda is not None and libcuda.path is None:
            out.append("libraries.libcuda.so.1")
        return tuple(out)

    @cached_property
    def failed_dependencies(self) -> tuple[tuple[str, str, str], ...]:
        """(library asked for, library it needs, evidence) where the loader found the library
        TensorFlow asked for but not one it links: glibc's dlerror names the file it could not
        open, which is that dependency when it differs from the library asked for
        (``'libcusolver.so.11'; dlerror: libnvJitLink.so.12: cannot open shared object file``).
        """
        out: list[tuple[str, str, str]] = []
        for i, line in enumerate(self.snap.log):
            m = _DEPENDENCY_FAILED.search(line[:1024])
            if m and m["dep"] != m["asked"]:
                out.append((m["asked"], m["dep"], f"log[{i}]"))
        return tuple(out)

    @cached_property
    def log_cuda_major(self) -> tuple[int, str] | None:
        """(CUDA major, evidence) the CUDA runtime TensorFlow opened or asked for in the log
        shows (``libcudart.so.11.0``, ``cudart64_110.dll``)."""
        for i, line in enumerate(self.snap.log):
            for m in _CUDA_SONAME.finditer(line[:1024]):
                got = soname_cuda(m.group(0))
                if got is not None and got[0] == "cudart":
                    return got[1], f"log[{i}]"
        return None

    @cached_property
    def asked_cuda(self) -> tuple[int, int | None, str] | None:
        """(major, minor or None, evidence): the CUDA version a failed soname shows TensorFlow
        was built for (``libcudart.so.10.0`` -> 10.0), when one does."""
        for soname, where in self.failed_sonames:
            got = soname_cuda(soname)
            if got is not None and got[0] != "cudnn":
                return got[1], got[2], where
        return None

    @cached_property
    def cuinit_error(self) -> tuple[str, str] | None:
        """(error, evidence) of a ``failed call to cuInit`` line: the driver API's own verdict."""
        for hit in self.log.hits:
            err = hit.groups.get("cuda_error")
            if err:
                return err, hit.evidence
        for i, line in enumerate(self.snap.log):
            m = _CUINIT.search(line[:1024])
            if m:
                return m.group("err"), f"log[{i}]"
        return None

    @cached_property
    def other_vendor_gpus(self) -> tuple[tuple[str, str], ...]:
        """(evidence, name) of each listed GPU that is not NVIDIA's (the rules' GPU table's
        vendor, or a Radeon/Intel/Iris/Vega name)."""
        return tuple(
            (f"gpus[{i}]", gpu.name)
            for i, gpu in enumerate(self.snap.gpus or ())
            if gpu.name and self._other_vendor(gpu.name)
        )

    def _other_vendor(self, name: str) -> bool:
        """True for a GPU name that is not NVIDIA's: the rules' GPU table says another vendor,
        or the name is a Radeon/Intel/Iris/Vega one. An empty name is not known to be."""
        if not name:
            return False
        entry = next((g for g in self.rules.gpus if g.match.search(name)), None)
        vendor = getattr(entry, "vendor", "nvidia") if entry else "nvidia"
        return vendor != "nvidia" or _NOT_NVIDIA.search(name) is not None

    @cached_property
    def gpu_node_present(self) -> tuple[str, ...]:
        """Log lines proving that on Linux the kernel driver runs and /dev/nvidia0 exists:
        TensorFlow's CUDA diagnostics print "retrieving CUDA diagnostic information" only past
        both checks (Diagnostician::LogDiagnosticInformation; on Windows they are compiled
        out, so a Windows path in the line's prefix rules it out)."""
        if self.os not in {"linux", None}:
            return ()
        return tuple(h.evidence for h in self.log.all("gpu-node-present") if "\\" not in h.line)

    @cached_property
    def tf_imported_from(self) -> tuple[str, str] | None:
        """(line, evidence) of a log line showing TensorFlow present: a traceback or path into
        ``site-packages/tensorflow``, or a line TensorFlow's own C++ code printed."""
        for i, line in enumerate(self.snap.log):
            text = line[:1024]
            if _TF_PATH.search(text) or _TF_OWN_LINE.search(text):
                return text, f"log[{i}]"
        return None

    @cached_property
    def gpu_inventory(self) -> tuple[str, ...]:
        """Evidence that an NVIDIA GPU is physically there (NVML/nvidia-smi or the report's GPU
        list, the PCI bus); empty when nothing says so."""
        ev = [
            f"gpus[{i}]"
            for i, gpu in enumerate(self.snap.gpus or ())
            if not self._other_vendor(gpu.name or "")
        ]
        pci = self.snap.extra.get("pci_nvidia_devices")
        if (isinstance(pci, int) and pci > 0) or (isinstance(pci, list) and pci):
            ev.append("extra.pci_nvidia_devices")
        return tuple(ev)

    # ---- environment
    def env_list(self, name: str) -> tuple[str, ...]:
        sep = ";" if self.os == "windows" else ":"
        return tuple(e for e in self.snap.env.get(name, "").split(sep) if e)

    @cached_property
    def site_packages(self) -> str | None:
        """The target's site-packages folder, when it can be told exactly."""
        value = self.snap.extra.get("site_packages")
        if isinstance(value, str) and value:
            return value
        venv = self.snap.python.venv
        if isinstance(venv, str) and venv and self.python and self.os in {"linux", None}:
            return f"{venv.rstrip('/')}/lib/python{self.python}/site-packages"
        return None

    def nvidia_installed(self, major: int | None = None) -> tuple[str, ...]:
        """Installed ``nvidia-*-cuXX`` wheels (of CUDA *major* when given)."""
        out = []
        for name in self.packages:
            match = re.fullmatch(r"nvidia-[\w-]+-cu(\d+)", name)
            if match and (major is None or int(match.group(1)) == major):
                out.append(name)
        return tuple(sorted(out))

    def library(self, component: str) -> tuple[str, Library] | None:
        """The snapshot's library entry for a component (``cudnn`` -> ``libcudnn.so.9``)."""
        for soname, lib in self.snap.libraries.items():
            if re.fullmatch(rf"lib{component}\.so(\.[\d.]+)?", soname):
                return soname, lib
        return None

    def known_bad_hits(self, cause: str) -> list[str]:
        """Ids of the rules' known defects of the installed release that apply here."""
        out = []
        for bad in self.rules.known_bad:
            if bad.cause != cause or self.tf_version not in bad.releases:
                continue
            if bad.python is not None and (self.python is None or self.python not in bad.python):
                continue
            if bad.requires is not None:
                have = self.packages.get(canonicalize_name(bad.requires.name))
                if have is None or not bad.requires.specifier.contains(have, prereleases=True):
                    continue
            out.append(bad.id)
        return out


# --------------------------------------------------------------------------- loose evidence
# Facts people paste beside TensorFlow's own lines: the CUDA toolkit they installed (nvcc's
# banner, an issue template's answer, a CUDA folder on a search path), and what the loader said
# about a CUDA library. Each reading returns the value with the evidence pointer it came from.

_NVCC = lazy(r"Cuda compilation tools, release (\d+\.\d+)")
_CONDA_CUDA_ROW = lazy(
    r"\s*(?:cudatoolkit|cuda-toolkit|cuda-runtime|cuda-cudart|cuda-version)\s+"
    r"(?P<v>\d{1,2}\.\d+(?:\.\d+)*)\s+\S+"
)
"""A ``conda list`` row of the CUDA toolkit: name, version, build string (and channel)."""
_CONDA_ROW = lazy(
    r"\s*(?P<name>[A-Za-z][\w.-]*)\s+(?P<version>\d+\.\d+[\w.+!]*)\s+(?P<build>[\w.+!-]+)"
    r"\s+(?P<channel>[a-z][\w.-]*(?:/[\w.-]+)*)\s*$"
)
"""A whole ``conda list`` row with its channel column."""
_CONDA_CUDNN_ROW = lazy(r"\s*cudnn\s+(?P<v>[2-9]\.\d+(?:\.\d+)*)\s+\S+")
_BARE_PAIR = lazy(
    r"\s*(?P<cuda>(?:[7-9]|1[0-3])\.\d+(?:\.\d+)*)\s*/\s*(?:cuDNN\s*)?v?"
    r"(?P<cudnn>[2-9](?:\.\d+)+)\s*$"
)
"""A line that is only "12.5/9.2.1": the answer to the "CUDA/cuDNN version" field of
TensorFlow's issue form, whose label is a heading of its own."""
_IMAGE_BANNER = lazy(r"\s*CUDA Version (\d+\.\d+)\.\d+\s*$")
"""The banner NVIDIA's CUDA images print when a container starts ("== CUDA ==", then
"CUDA Version 12.1.1"): the toolkit in the image. nvidia-smi's "CUDA Version: 12.2" (a colon,
two parts) is the driver's ceiling instead."""
_SMI_HEADER = lazy(r"NVIDIA-SMI|Driver Version", re.I)
_TEMPLATE_CUDA = lazy(
    r"^\s*[-*]?\s*(?:CUDA(?:/cuDNN)?(?:\s+version)?\s*[:=]\s*(?:CUDA\s*)?v?|cuda[-_ ]?)"
    r"(?P<v>\d{1,2}\.\d)(?:\.\d+)*\b",
    re.I,
)
_TEMPLATE_CUDNN = lazy(
    r"\bcu(?:dnn|DNN)(?:\s+version)?\s*[:=]?\s*v?(?P<v>\d\.\d+(?:\.\d+)*)"
    # TensorFlow's issue template asks "CUDA/cuDNN version:"; the answer is a pair, written
    # "10.1/8.0.2.39", "11.2, 8.1.1", "CUDA 11.2 / cuDNN 8.1" or "11.0 / 8".
    r"|CUDA\s*/\s*cuDNN(?:\s+versions?)?\s*[:=]\s*(?:CUDA\s*)?v?\d{1,2}(?:\.\d+)*"
    r"\s*(?:[/,;&]|\band\b|\s)\s*(?:cuDNN\s*)?v?(?P<pair>\d(?:\.\d+)*)\b",
    re.I,
)
_WIN_TOOLKIT = lazy(r"CUDA[\\/]v(?P<v>\d+\.\d+)", re.I)
_CUDA_SONAME = lazy(
    r"\b(?P<soname>lib(?P<comp>cudart|cublas|cufft|curand|cusolver|cusparse|cudnn)"
    r"(?:_(?:ops|cnn|adv|graph|engines)\w*)?"  # cuDNN 8/9's sub-libraries (libcudnn_cnn_infer)
    r"(?:\.so\.|\.)(?P<ver>\d+(?:\.\d+)?)(?:\.dylib)?"
    r"|(?P<dcomp>cudart|cublas|cufft|curand|cusolver|cusparse|cudnn)"
    r"(?:_(?:ops|cnn|adv|graph|engines)\w*)?64_(?P<dver>\d+)\.dll)"
)
_DEPENDENCY_FAILED = lazy(
    r"Could not (?:load|dlopen) (?:dynamic )?library '?(?P<asked>lib[\w+-]+\.so[\w.]*?)'?"
    r"[;:.,]?\s+(?:dlerror:\s*)?(?P<dep>lib[\w+-]+\.so[\w.]*): cannot open shared object file"
)
_IMPORT_SONAME = lazy(
    r"(?:(?:ImportError|OSError):\s*)?(?P<soname>lib[\w+-]+\.so(?:\.\d+)*)"
    r"(?::\s*cannot open shared object file|\s*$)"
)
_LOADER_FAILED = lazy(
    r"cannot open shared object file|Could not (?:load|dlopen|find|open)|Couldn't open CUDA "
    r"library|Library not loaded|image not found|DLL load failed|not found",
    re.I,
)
_CUINIT = lazy(
    r"failed call to cuInit: (?:\w+: CUDA error: Failed call to cuInit: )?"
    r"(?P<err>CUDA_ERROR_[A-Z_]+|UNKNOWN ERROR \(\d+\))"
)
_PIP_SATISFIED = lazy(r"Requirement already satisfied: (?P<name>[A-Za-z0-9][\w.-]*)")
_NUM_GPUS = lazy(r"\bNum GPUs Available:?\s*(\d+)\b")
"""The line tensorflow.org's GPU guide has people print: ``print("Num GPUs Available: ",
len(tf.config.list_physical_devices('GPU')))``."""
_LABELLED_ANSWER = lazy(
    r"\b(?P<what>GPUs? (?:is )?available|is_gpu_available|built with CUDA|is_built_with_cuda)"
    r"\s*(?:\(\))?\s*[:?=]\s*(?P<value>True|False|\[\])\s*$",
    re.I,
)
_GPU_CALL = lazy(
    r"is_built_with_cuda\(\s*\)|is_gpu_available\(|list_physical_devices\(\s*"
    r"(?:device_type\s*=\s*)?['\"]GPU['\"]\s*\)"
)
_ANSWER_LINE = lazy(r"(?:Out\[\d+\]:\s*)?(?P<value>True|False|\[\])")
_NOT_NVIDIA = lazy(r"radeon|\bamd\b|intel|iris|\bvega", re.I)
_TRACEBACK_HEAD = lazy(r"^\s*Traceback \(most recent call last\):")
_EXCEPTION_TEXT = lazy(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)\b")
_FRAME = lazy(r'^\s*File "[^"]*", line \d+, in ')
_TF_PACKAGE_FILE = lazy(r'^\s*File "[^"]*[\\/](?:site|dist)-packages[\\/]tensorflow[\\/][^"]*"')
_TF_INIT_FRAME = lazy(r'[\\/](?:site|dist)-packages[\\/]tensorflow[\\/]__init__\.py"')
_TF_IMAGE_TAG = lazy(
    r"(?<![\w.-])(?:(?:docker\.io|gcr\.io)/)?tensorflow/tensorflow:"
    r"(?P<v>\d+\.\d+\.\d+(?:-?rc\d+)?)(?![\w.])"
)
_TF_INFO_LINE = lazy(
    r"(?:^|\s)(?:I +\S*tensorflow/\S+\.cc:\d+\]|I\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+\.cc:\d+\])"
)
"""A line TensorFlow's C++ logged at INFO: its own prefix, or absl's (2.16 on, a bare file name)."""
_ABOUT_CUDA = lazy(
    r"cuda|cudnn|cublas|cufft|curand|cusolver|cusparse|cuinit|cudevice|nvidia|nvcuda|"
    r"gpu_device|gpu_init|dso_loader|stream_executor|\bgpu\b|/gpu:|device:gpu",
    re.IGNORECASE,
)
"""Words of any line about CUDA or a GPU device (TensorFlow's, the loader's, the driver's)."""
_TF_PATH = lazy(r"[\\/](?:site|dist)-packages[\\/]tensorflow(?:[\\/]|$)")
_CUDA_SOURCE = lazy(r"stream_executor[\\/]cuda[\\/]\w+\.cc:\d+\]")
_TF_OWN_LINE = lazy(r"\btensorflow/(?:core|python|stream_executor)/\S+\.cc:\d+\]")
"""A line only TensorFlow's own C++ prints (XLA's and TSL's files print in JAX too)."""


def _unfinished_frames(log: tuple[str, ...], head: int) -> list[tuple[str, str]]:
    """(frame line, source line under it) of the traceback whose header is ``log[head]``, or
    nothing when an exception line (or another traceback) follows it: only a traceback the
    paste cut short is returned."""
    frames: list[tuple[str, str]] = []
    for j in range(head + 1, min(head + 200, len(log))):
        text = log[j][:1024]
        if _TRACEBACK_HEAD.match(text) or _EXCEPTION_TEXT.match(text):
            return []
        if _FRAME.match(text):
            nxt = log[j + 1][:1024] if j + 1 < len(log) else ""
            frames.append((text, "" if _FRAME.match(nxt) else nxt.strip()))
    return frames


def soname_cuda(soname: str) -> tuple[str, int, int | None] | None:
    """(component, CUDA or cuDNN major, minor or None) a library file name asks for.

    ``libcudart.so.10.1`` -> ("cudart", 10, 1); ``cudart64_101.dll`` -> ("cudart", 10, 1);
    ``cudart64_110.dll``/``libcudart.so.11.0`` -> ("cudart", 11, None): from CUDA 11 on, one
    soname serves every minor. ``libcudnn.so.7`` -> ("cudnn", 7, None).
    """
    m = _CUDA_SONAME.search(soname)
    if not m:
        return None
    if m.group("comp"):
        comp, ver = m.group("comp"), m.group("ver")
        parts = [int(p) for p in ver.split(".")]
        major = parts[0]
        minor = parts[1] if len(parts) > 1 and comp != "cudnn" else None
    else:
        comp, digits = m.group("dcomp"), m.group("dver")
        if comp == "cudnn":
            major, minor = int(digits[0]), None
        elif len(digits) == 1 or (len(digits) == 2 and digits.startswith("1")):
            major, minor = int(digits), None  # cudart64_12.dll, cufft64_10.dll
        else:
            major, minor = int(digits[:-1]), int(digits[-1])
    if comp == "cudnn":
        return comp, major, None
    if minor is None and comp != "cudart":
        return None  # libcufft.so.10, libcusolver.so.11: the library's own number, not CUDA's
    if major >= 11:
        minor = None
    return comp, major, minor
