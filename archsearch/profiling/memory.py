"""Peak memory of a model: an estimate without a GPU (fake tensors) and the CUDA measurement.

Both run one procedure (:func:`_profile`), so their numbers mean the same thing:

* **inference peak**: ``model.eval()``, one forward under ``torch.no_grad()``; the peak of live
  tensor bytes, parameters, inputs and the logits included;
* **training peak**: ``model.train()``, steps of forward + ``loss`` + ``backward`` + optimizer step
  + ``zero_grad(set_to_none=True)``; the peak of a steady-state step, one whose optimizer state
  already exists: parameters, optimizer state, inputs, activations, gradients and every temporary.
  The CUDA measurement runs a warm-up step first to make the state; the estimate creates the state
  directly, as the optimizer's first step would (:func:`init_optimizer_state`), and runs the one
  measured step (the same bytes, checked against the two-step procedure by the tests; a parameter
  left without a gradient falls back to the warm-up step);
* **activation bytes**: bytes alive when the measured step's forward has returned the loss (before
  backward) minus those alive before it: what autograd saves, plus the loss;
* **decode state**: analytic, ``model_cost(cfg, T).decode_state × batch × element size``, for models
  that can decode token by token (None otherwise).

:func:`estimate_memory` allocates nothing. It builds the model under ``FakeTensorMode`` with *CPU*
fake tensors and counts live bytes with :class:`LiveBytes`, a dispatch mode: every op output's
storage is added when first seen and subtracted when the storage is garbage-collected. CPU is on
purpose (docs/costs.md, "Memory"): there ``scaled_dot_product_attention`` takes the flash-style CPU
kernel, linear in T as flash/memory-efficient kernels are on a GPU, whereas meta-device and
fake-CUDA tensors fall back to the quadratic math kernel (and fake-CUDA backward fails without a
GPU). Shapes only, so the cost does not depend on T.

What the estimate models: every tensor an ATen op returns (views share their storage), held as long
as Python or autograd holds it; the CUDA caching allocator's rounding of each allocation to 512-byte
blocks (``device="cuda"``); the optimizer implementation torch picks on that device (AdamW
``foreach`` on CUDA, per parameter on CPU). What it does not model: buffers allocated *inside* one
kernel (flash-attention backward accumulators; cuBLAS/cuBLASLt workspaces, allocated once per
process through the caching allocator, which :func:`measure_memory` leaves out as well), allocator
fragmentation and cached-but-free blocks (``max_memory_reserved``), the CUDA context, and any
difference between the CPU kernels' choices and the GPU's (SDPA backend, its saved log-sum-exp
layout, GEMM algorithms). It also counts the optimizer's step counters as device tensors; torch
keeps them on the CPU. Treat it as an estimate of ``max_memory_allocated``, labelled with the
attention kernels it saw.
"""

from __future__ import annotations

import functools
import gc
import traceback
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from archsearch.model.config import ModelConfig
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model

#: the CUDA caching allocator rounds every allocation up to a multiple of this (kMinBlockSize)
CUDA_BLOCK_BYTES = 512

OPTIMIZERS = ("adamw", "sgd")


@dataclass
class MemoryResult:
    """Memory of one model at one (batch, seq_len, dtype); bytes, None where not known.

    ``method`` says how the numbers were obtained; ``attention_kernels`` the SDPA kernels the
    forward and backward dispatched to (the backend decides whether attention memory is linear).
    """

    method: str
    dtype: str
    batch: int
    seq_len: int
    optimizer: str
    params_bytes: int | None
    inference_peak_bytes: int | None
    training_peak_bytes: int | None
    activation_bytes: int | None
    decode_state_bytes: int | None
    decode_state_bytes_per_token: float | None
    attention_kernels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# counting live bytes under fake tensors


class LiveBytes(TorchDispatchMode):
    """Dispatch mode that counts the bytes of live tensor storages, and their peak.

    Each op output's storage is added once, when first seen (an in-place resize is re-counted),
    and subtracted when the storage is garbage-collected (a weakref callback on its
    ``UntypedStorage``; torch keeps that Python object alive as long as C++, e.g. autograd's saved
    tensors, holds the storage). Tensors that exist before tracking starts (parameters, inputs)
    must be registered with :meth:`track`. ``block_bytes`` rounds every storage up to a multiple
    (512 mimics the CUDA caching allocator; 1 counts exact bytes). Works on real and fake tensors;
    it also records the names of the attention kernels it sees.
    """

    def __init__(self, block_bytes: int = 1) -> None:
        super().__init__()
        if block_bytes < 1:
            raise ValueError(f"block_bytes must be >= 1, got {block_bytes}")
        self.block_bytes = block_bytes
        self.current = 0
        self.peak = 0
        self.attention_kernels: set[str] = set()
        # StorageImpl address -> (weak reference keeping the callback, counted bytes)
        self._live: dict[int, tuple[weakref.ref[torch.UntypedStorage], int]] = {}

    def rounded(self, nbytes: int) -> int:
        """Bytes counted for a storage of ``nbytes`` (0 stays 0, as CUDA allocates nothing)."""
        return -(-nbytes // self.block_bytes) * self.block_bytes

    def track(self, tensors: Iterable[Any]) -> None:
        """Count tensors that existed before tracking (parameters, buffers, inputs)."""
        for t in tensors:
            if isinstance(t, torch.Tensor):
                self._see(t)

    def reset_peak(self) -> None:
        self.peak = self.current

    def _see(self, t: torch.Tensor) -> None:
        if t.layout != torch.strided:
            return  # sparse/nested tensors have no single storage; none occur in our models
        st = t.untyped_storage()
        key, n = st._cdata, self.rounded(st.nbytes())
        known = self._live.get(key)
        if known is None:
            ref = weakref.ref(st, functools.partial(self._freed, key))
            self._live[key] = (ref, n)
            self.current += n
        elif known[1] != n:
            self._live[key] = (known[0], n)
            self.current += n - known[1]
        else:
            return
        self.peak = max(self.peak, self.current)

    def _freed(self, key: int, _ref: object) -> None:
        known = self._live.pop(key, None)
        if known is not None:
            self.current -= known[1]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if "scaled_dot_product" in func.__name__:
            self.attention_kernels.add(func.__name__.split(".")[0])
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._see(t)
        return out


class _Counter(Protocol):
    """Where the bytes come from: a :class:`LiveBytes` mode, or the CUDA allocator's stats."""

    def current(self) -> int: ...

    def peak(self) -> int: ...

    def reset_peak(self) -> None: ...


class _LiveCounter:
    def __init__(self, live: LiveBytes) -> None:
        self.live = live

    def current(self) -> int:
        return self.live.current

    def peak(self) -> int:
        return self.live.peak

    def reset_peak(self) -> None:
        self.live.reset_peak()


class _CudaCounter:
    """The caching allocator's statistics, counted from ``base``: what was allocated when
    :meth:`start` ran (after cuBLAS made its workspaces, so those are left out)."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self.base = 0

    def start(self) -> None:
        self.clean()
        # a matmul and a biased linear (cuBLASLt): their workspaces live as long as the process
        a = torch.ones(8, 8, device=self.device, dtype=self.dtype)
        torch.nn.functional.linear(a, a, a[0]).sum().item()
        (a @ a).sum().item()
        del a
        self.clean()
        self.base = torch.cuda.memory_allocated(self.device)

    def clean(self) -> None:
        gc.collect()
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()

    def current(self) -> int:
        torch.cuda.synchronize(self.device)
        return torch.cuda.memory_allocated(self.device) - self.base

    def peak(self) -> int:
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device) - self.base

    def reset_peak(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)


class _DeviceCounter(_Counter, Protocol):
    """A :class:`_Counter` for a real device: ``start`` fixes the zero, ``clean`` frees caches."""

    def start(self) -> None: ...

    def clean(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# the procedure both methods run


@dataclass
class Peaks:
    """What :func:`_profile` measures; all in bytes (see the module docstring)."""

    params_bytes: int
    inference_peak_bytes: int
    training_peak_bytes: int
    activation_bytes: int
    attention_kernels: list[str] = field(default_factory=list)


def make_optimizer(name: str, params: Iterable[nn.Parameter], *, foreach: bool) -> Any:
    """The optimizer a training step uses: ``adamw`` (torch defaults, lr 1e-3) or ``sgd`` (no
    momentum, so no state). ``foreach`` is torch's default on CUDA: it allocates temporaries for
    all parameters at once, so it changes the peak."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-3, foreach=foreach)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, foreach=foreach)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


def param_bytes(model: nn.Module) -> int:
    """Bytes of the parameters, each storage once (tied weights share one)."""
    storages = {p.untyped_storage()._cdata: p.untyped_storage() for p in model.parameters()}
    return sum(st.nbytes() for st in storages.values())


def init_optimizer_state(opt: Any) -> bool:
    """Create the state a first ``opt.step()`` leaves behind, without running a step; False (and
    nothing created) if ``opt`` is not one of :data:`OPTIMIZERS` as :func:`make_optimizer` makes
    them. AdamW: ``step`` (a 0-d CPU tensor of the default scalar dtype), ``exp_avg`` and
    ``exp_avg_sq`` (zeros like the parameter) per parameter, as ``torch.optim.Adam`` creates them
    lazily; SGD without momentum keeps none. Every parameter gets state: the caller checks that
    every one then gets a gradient (the optimizer skips, and makes no state for, one without)."""
    if isinstance(opt, torch.optim.SGD):
        return all(g["momentum"] == 0 for g in opt.param_groups)
    if not isinstance(opt, torch.optim.AdamW):
        return False
    if any(g["amsgrad"] or g["capturable"] or g["fused"] for g in opt.param_groups):
        return False
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for group in opt.param_groups:
        for p in group["params"]:
            opt.state[p] = {
                "step": torch.tensor(0.0, dtype=scalar, device="cpu"),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
    return True


def _profile(
    model: nn.Module, idx: torch.Tensor, opt: Any, counter: _Counter, *, warmup: bool = True
) -> Peaks | None:
    """Inference forward, then a steady-state training step; see the module docstring.

    ``model`` has ``forward(idx)`` and ``loss(idx, targets)``; targets are ``idx`` shifted by one.
    ``warmup``: make the optimizer state with a warm-up step (else with
    :func:`init_optimizer_state`; None is returned, with the state made, when that cannot stand
    for the warm-up: an unknown optimizer, or a parameter the loss gives no gradient).
    """
    model.eval()
    counter.reset_peak()
    with torch.no_grad():
        out = model(idx)
    inference = counter.peak()
    del out
    model.train()
    targets = idx.roll(-1, dims=1)
    if not warmup and not init_optimizer_state(opt):
        return None
    activation = before = 0
    for step in range(2 if warmup else 1):
        measured = step == 1 or not warmup
        if measured:  # steady state: the optimizer state exists
            counter.reset_peak()
            before = counter.current()
        loss = model.loss(idx, targets)
        if measured:
            activation = counter.current() - before
        loss.backward()
        del loss
        if not warmup and any(p.grad is None for p in model.parameters()):
            return None  # the state made up front includes parameters the step would skip
        opt.step()
        opt.zero_grad(set_to_none=True)
    return Peaks(param_bytes(model), inference, counter.peak(), activation)


def estimate_module_memory(
    build: Callable[[], tuple[nn.Module, torch.Tensor]],
    *,
    optimizer: str = "adamw",
    device: str = "cuda",
    warmup: bool = False,
) -> Peaks:
    """:func:`_profile` under ``FakeTensorMode`` (CPU fake tensors): allocates nothing.

    ``build()`` runs under the fake mode and returns ``(model, idx)``: a module with
    ``forward(idx)`` and ``loss(idx, targets)``, and its input. ``device`` is the device whose
    allocator and optimizer default are mimicked: ``"cuda"`` (512-byte blocks, ``foreach``) or
    ``"cpu"`` (exact bytes, per-parameter loop); the kernels are CPU's either way. ``warmup``: run
    a warm-up step for the optimizer state instead of making it directly (the same bytes; slower;
    ``build`` may then be called twice, as it is when the state cannot be made directly).
    """
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
    peaks = _estimate(build, optimizer, device, warmup=warmup)
    if peaks is None:  # the optimizer state cannot be made up front: the warm-up step makes it
        peaks = _estimate(build, optimizer, device, warmup=True)
    assert peaks is not None
    return peaks


def _estimate(
    build: Callable[[], tuple[nn.Module, torch.Tensor]],
    optimizer: str,
    device: str,
    *,
    warmup: bool,
) -> Peaks | None:
    on_cuda = device == "cuda"
    live = LiveBytes(CUDA_BLOCK_BYTES if on_cuda else 1)
    with FakeTensorMode():
        model, idx = build()
        opt = make_optimizer(optimizer, model.parameters(), foreach=on_cuda)
        live.track([*model.parameters(), *model.buffers(), idx])
        with live:
            peaks = _profile(model, idx, opt, _LiveCounter(live), warmup=warmup)
    if peaks is not None:
        peaks.attention_kernels = sorted(live.attention_kernels)
    return peaks


# ---------------------------------------------------------------------------------------------
# language models


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def build_in_dtype(
    cfg: ModelConfig, dtype: torch.dtype, device: torch.device | str | None = None
) -> nn.Module:
    """``build_model(cfg)`` with parameters created in ``dtype`` (a floating type).

    Created so rather than converted with ``.to(dtype)``: fake parameters cannot be swapped
    (FakeTensorMode holds weak references to them), and on a GPU a float32 copy first would
    leave its blocks behind.
    """
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return build_model(cfg, device=device)
    finally:
        torch.set_default_dtype(default)


def decode_state_bytes(
    model: nn.Module, cfg: ModelConfig, seq_len: int, batch: int, dtype: torch.dtype
) -> int | None:
    """``model_cost(cfg, T).decode_state × batch × element size``; None if it cannot decode."""
    if not model.can_decode():  # type: ignore[operator]
        return None
    return model_cost(cfg, seq_len).decode_state * batch * dtype.itemsize


def _result(
    method: str,
    cfg: ModelConfig,
    seq_len: int,
    batch: int,
    dtype: torch.dtype,
    optimizer: str,
    peaks: Peaks | None,
    decode: int | None,
    params: int | None = None,
) -> MemoryResult:
    return MemoryResult(
        method=method,
        dtype=_dtype_name(dtype),
        batch=batch,
        seq_len=seq_len,
        optimizer=optimizer,
        params_bytes=peaks.params_bytes if peaks else params,
        inference_peak_bytes=peaks.inference_peak_bytes if peaks else None,
        training_peak_bytes=peaks.training_peak_bytes if peaks else None,
        activation_bytes=peaks.activation_bytes if peaks else None,
        decode_state_bytes=decode,
        decode_state_bytes_per_token=None if decode is None else decode / seq_len,
        attention_kernels=peaks.attention_kernels if peaks else [],
    )


def estimate_memory(
    cfg: ModelConfig,
    seq_len: int,
    *,
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
    optimizer: str = "adamw",
    device: str = "cuda",
) -> MemoryResult:
    """Estimated memory of ``cfg`` at ``batch × seq_len`` tokens, without allocating anything.

    Fake CPU tensors and a live-bytes count (see the module docstring for what is and is not
    modelled); the cost is independent of ``seq_len``. ``device``: whose allocator rounding and
    optimizer default to mimic (``"cuda"`` or ``"cpu"``). Raises ConfigError if the model cannot
    run at ``seq_len``.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    cfg.check_seq_len(seq_len)
    built: list[nn.Module] = []

    def build() -> tuple[nn.Module, torch.Tensor]:
        model = build_in_dtype(cfg, dtype)
        built.append(model)
        return model, torch.randint(0, cfg.vocab_size, (batch, seq_len))

    peaks = estimate_module_memory(build, optimizer=optimizer, device=device)
    decode = decode_state_bytes(built[0], cfg, seq_len, batch, dtype)
    return _result(
        "estimate (FakeTensor, CPU kernels)", cfg, seq_len, batch, dtype, optimizer, peaks, decode
    )


def measure_memory(
    cfg: ModelConfig,
    seq_len: int,
    *,
    batch: int,
    dtype: torch.dtype,
    device: str | torch.device = "cuda",
    optimizer: str = "adamw",
) -> MemoryResult:
    """Measured memory on a CUDA device: ``max_memory_allocated`` around the same procedure as
    :func:`estimate_memory` (inference forward, steady-state training step, activations from
    ``memory_allocated`` before/after the forward).

    Bytes are counted from what the process had allocated on the device before the call, after one
    small matmul has made cuBLAS/cuBLASLt allocate their workspaces (kept for the process's life;
    the estimate leaves them out too). So the numbers are the model's own and do not depend on what
    ran before. Synchronizes and empties the cache before and after. A
    ``torch.cuda.OutOfMemoryError`` propagates (the caller records the point as infeasible), after
    the memory is freed. On other devices nothing is measured: the peaks are None (parameter and
    decode bytes still given).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    cfg.check_seq_len(seq_len)
    dev = torch.device(device)
    if dev.type != "cuda":
        meta = build_in_dtype(cfg, dtype, "meta")
        decode = decode_state_bytes(meta, cfg, seq_len, batch, dtype)
        method = f"not measured ({dev.type}: no allocator statistics)"
        return _result(
            method, cfg, seq_len, batch, dtype, optimizer, None, decode, param_bytes(meta)
        )
    return _measure(cfg, seq_len, batch, dtype, optimizer, dev, _CudaCounter(dev, dtype))


def _measure(
    cfg: ModelConfig,
    seq_len: int,
    batch: int,
    dtype: torch.dtype,
    optimizer: str,
    dev: torch.device,
    counter: _DeviceCounter,
) -> MemoryResult:
    """:func:`measure_memory` on ``dev`` with the bytes from ``counter`` (tests pass a CPU one)."""
    model: nn.Module | None = None
    opt: Any = None
    idx: torch.Tensor | None = None
    counter.start()
    try:
        model = build_in_dtype(cfg, dtype, dev)
        gen = torch.Generator(device=dev).manual_seed(0)
        idx = torch.randint(0, cfg.vocab_size, (batch, seq_len), device=dev, generator=gen)
        opt = make_optimizer(optimizer, model.parameters(), foreach=dev.type == "cuda")
        counter.clean()
        names = LiveBytes()  # only for the attention kernel names; bytes come from the counter
        with names:
            peaks = _profile(model, idx, opt, counter)  # a real device: a warm-up step
        assert peaks is not None
        peaks.attention_kernels = sorted(names.attention_kernels)
        decode = decode_state_bytes(model, cfg, seq_len, batch, dtype)
    except torch.cuda.OutOfMemoryError as e:
        # the traceback's frames hold the activations: clear them so the memory can be freed
        traceback.clear_frames(e.__traceback__)
        model = opt = idx = None
        counter.clean()
        raise
    finally:
        model = opt = idx = None
        counter.clean()
    method = f"measured ({dev.type.upper()} max_memory_allocated)"
    return _result(method, cfg, seq_len, batch, dtype, optimizer, peaks, decode)
