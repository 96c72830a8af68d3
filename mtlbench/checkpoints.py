"""Reading checkpoint files safely: every torch.load here is weights-only, and every failure is one line.

Users download weights files themselves, and a run's checkpoints can be truncated by a crash or
replaced by anyone: all of them are untrusted. `load_tensor_file` never unpickles arbitrary
objects, and its messages never suggest loading unsafely. State dicts are compared key by key
(`check_keys`) instead of being loaded non-strictly.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from mtlbench.errors import InputError

WRAPPER_KEYS = ("model", "state_dict", "teacher")
SHOWN_KEYS = 10


@dataclass
class CheckReport:
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # "key: file (..) vs model (..)"

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        """One line listing at most SHOWN_KEYS offending keys over all three kinds."""
        parts, shown = [], 0
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("wrong shape", self.mismatched)):
            listed = keys[: max(0, SHOWN_KEYS - shown)]
            shown += len(listed)
            if listed:
                parts.append(f"{label}: {', '.join(listed)}")
        hidden = len(self.missing) + len(self.unexpected) + len(self.mismatched) - shown
        return "; ".join(parts) + (f"; and {hidden} more" if hidden else "")


def load_tensor_file(path: str | Path, map_location: str | torch.device = "cpu", data: bytes | None = None):
    """The content of a file written with torch.save, loaded weights-only (tensors, numbers,
    strings and containers of them); anything else is a one-line InputError naming the file.
    `data`: the file's bytes when the caller has read them already (e.g. to hash them)."""
    path = Path(path)
    if data is None and not path.is_file():
        raise InputError(path, "file not found")
    try:
        # torch warns about a pickle protocol it did not write before refusing or reading the file:
        # noise next to the one-line outcome
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path if data is None else io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # garbage bytes and files holding arbitrary objects both end here
        raise InputError(path, "not a file the safe (weights-only) loader accepts: corrupt, or it holds objects other than tensors") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as exc:  # truncated or malformed archives
        reason = _first_line(exc)
        if "weights_only" in reason:
            reason = "holds objects other than tensors"
        raise InputError(path, f"not a readable PyTorch file, truncated or corrupt ({reason})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unwrap(loaded, path: Path) -> dict:
    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), dict):
                return loaded[key]
        return loaded
    raise InputError(path, f"holds a {type(loaded).__name__}, not a state dict")


def select_prefix(state_dict: dict, prefix: str, path: Path) -> dict:
    """Keep the keys under `prefix`, without it; other keys belong to other parts of the file (e.g. a depth head)."""
    if not prefix:
        return state_dict
    selected = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    if not selected:
        examples = ", ".join(list(state_dict)[:3])
        raise InputError(path, f"no key starts with the prefix {prefix!r} (keys look like: {examples})")
    return selected


def read_state_dict(path: str | Path, prefix: str = "") -> dict[str, Tensor]:
    """The tensors of a weights file, unwrapped from "model"/"state_dict"/"teacher", prefix stripped."""
    path = Path(path)
    state_dict = select_prefix(_unwrap(load_tensor_file(path), path), prefix, path)
    not_tensors = [str(key) for key, value in state_dict.items() if not isinstance(value, Tensor)]
    if not_tensors:
        raise InputError(path, f"entries that are not tensors: {', '.join(not_tensors[:SHOWN_KEYS])}")
    return state_dict


def check_keys(model: nn.Module, state_dict: dict[str, Tensor]) -> CheckReport:
    """Compare keys and shapes (dtype is cast on load, so it is not compared)."""
    expected = model.state_dict()
    return CheckReport(
        missing=[key for key in expected if key not in state_dict],
        unexpected=[key for key in state_dict if key not in expected],
        mismatched=[
            f"{key}: file {tuple(value.shape)} vs model {tuple(expected[key].shape)}"
            for key, value in state_dict.items()
            if key in expected and value.shape != expected[key].shape
        ],
    )


class _Refused:
    """Stands in for an object of a class the restricted loader does not build; keeps nothing."""

    qualified_name = ""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state) -> None:
        pass


class _StorageType:
    """Stands in for a storage class: torch's persistent_load reads only its dtype, and a file
    cannot call it to allocate memory of its choosing (the real classes take a size)."""

    dtype: torch.dtype

    def __init__(self, *args, **kwargs):
        raise pickle.UnpicklingError("a storage class may only name the dtype of stored data")


def _tensor_globals() -> dict[str, object]:
    """What a zip-format state dict of tensors needs: torch's tensor rebuild functions, dtypes,
    storage types (as dtype carriers only), OrderedDict."""
    import collections

    import torch._utils as rebuild

    allowed: dict[str, object] = {"collections.OrderedDict": collections.OrderedDict}
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"):
        if hasattr(rebuild, name):
            allowed[f"torch._utils.{name}"] = getattr(rebuild, name)
    with warnings.catch_warnings():  # the typed storage classes' dtype warns that they are deprecated
        warnings.simplefilter("ignore")
        for name in dir(torch):
            value = getattr(torch, name, None)
            if isinstance(value, torch.dtype):
                allowed[f"torch.{name}"] = value
            elif isinstance(value, type) and name.endswith("Storage"):
                dtype = torch.uint8 if value is torch.UntypedStorage else getattr(value, "dtype", torch.uint8)
                allowed[f"torch.{name}"] = type(name, (_StorageType,), {"dtype": dtype})
    return allowed


def _refuse_torchscript(path: Path) -> None:
    """torch.load hands a TorchScript archive to torch.jit.load, which runs the archive's code."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.rsplit("/", 1)[-1] == "constants.pkl" or "/code/" in name for name in names):
        raise InputError(path, "a TorchScript archive, not a checkpoint: refused, because loading it would run its code")


def load_tensors_refusing_objects(path: str | Path) -> tuple[dict, list[str]]:
    """A torch.save file whose tensors and plain containers are kept and whose other objects
    (an argparse.Namespace of training arguments, an optimizer's classes) are refused unbuilt:
    returns the content, with a placeholder where each refused object was, and the names of the
    refused classes. Only zip-format files are unpickled this way, and then no class outside
    torch's tensor rebuilding is ever looked up, so no code of the file runs (the guarantee of
    weights_only=True, which would refuse the whole file); a legacy-format file is read
    weights-only or refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    # torch reads the legacy format's header with pickle_module.load, not with the Unpickler
    # whose find_class is restricted: that format is read weights-only (or refused) instead
    if not zipfile.is_zipfile(path):
        return load_tensor_file(path), []
    _refuse_torchscript(path)
    allowed = _tensor_globals()
    refused: list[str] = []

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            qualified = f"{module}.{name}"
            if qualified in allowed:
                return allowed[qualified]
            if qualified not in refused:
                refused.append(qualified)
            return type(name, (_Refused,), {"qualified_name": qualified})

    def restricted_load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()

    class RestrictedPickle:
        Unpickler = RestrictedUnpickler
        load = staticmethod(restricted_load)
        __name__ = "restricted_pickle"

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=False, pickle_module=RestrictedPickle)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise InputError(path, f"not a readable PyTorch file, truncated or corrupt ({_first_line(exc)})") from None
    return loaded, refused


def inspection(weights_format: str, architecture: str, model: nn.Module, state_dict: dict[str, Tensor], ignored=(), refused=()) -> dict:
    """What `mtlbench weights inspect` reports for any format: the format, the architecture (one
    line), the file's parameter and tensor counts, the key differences against `model` (built on
    the meta device), the keys deliberately not loaded and the objects refused unbuilt."""
    report = check_keys(model, state_dict)
    return {
        "format": weights_format,
        "architecture": architecture,
        "parameters": sum(value.numel() for value in state_dict.values()),
        "tensors": len(state_dict),
        "missing": report.missing,
        "unexpected": report.unexpected,
        "mismatched": report.mismatched,
        "ignored": list(ignored),
        "refused": list(refused),
        "loads_exactly": report.exact,
    }
