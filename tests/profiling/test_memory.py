"""Memory estimate (fake tensors) and CUDA measurement: exact bytes on a toy, linear attention
memory, no allocation at T = 1M, analytic decode state, every family and mixer."""

import gc
import json
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from archsearch.errors import ConfigError
from archsearch.mixers import mixer_config
from archsearch.model.config import BlockConfig, ModelConfig, load_model_config
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model, count_params
from archsearch.profiling.memory import (
    CUDA_BLOCK_BYTES,
    LiveBytes,
    _measure,
    build_in_dtype,
    estimate_memory,
    estimate_module_memory,
    init_optimizer_state,
    make_optimizer,
    measure_memory,
)
from archsearch.profiling.scaling import loglog_slope
from archsearch.testing.families import family_cases
from archsearch.testing.mixers import conformance_cases, tensor_numel

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20


def _lm(kind="softmax", d=32, n_layers=2, vocab=64, max_seq_len=256, **mixer) -> ModelConfig:
    if kind != "hsm":
        mixer.setdefault("n_heads", 2)
    block = BlockConfig(mixer=mixer_config(kind, **mixer))
    return ModelConfig(
        d_model=d, vocab_size=vocab, max_seq_len=max_seq_len, layers=(block,) * n_layers
    )


# ---- exact bytes on a toy whose every allocation is known -------------------------------------

B, D, H = 7, 3, 5  # sizes whose byte counts are not multiples of 512


class _Toy(nn.Module):
    """x (B, D) -> fc1 -> h (B, H) -> fc2 -> y (B, D); loss = y.sum()."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(D, H, bias=False)
        self.fc2 = nn.Linear(H, D, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))

    def loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.forward(x).sum()


def _toy() -> tuple[nn.Module, torch.Tensor]:
    return _Toy(), torch.randn(B, D)


def _toy_bytes(block: int) -> dict[str, int]:
    """By hand; every tensor is one allocation rounded up to ``block`` bytes."""

    def r(n_floats: int) -> int:
        return -(-4 * n_floats // block) * block

    params = r(H * D) + r(D * H)
    x = targets = r(B * D)  # targets = x rolled: same size
    h, y, scalar = r(B * H), r(B * D), r(1)
    # forward: h and y alive when the loss scalar is made; y is not saved by sum()
    forward = h + y + scalar
    # backward (SGD keeps no state, steps in place): the loss and its seed gradient (ones), then
    # fc2's MmBackward makes grad_h and grad_W2 while h is still saved; then fc1's makes grad_W1
    # after h is released; grad_h is freed only after it
    after_fc2 = scalar + scalar + h + r(B * H) + r(D * H)
    after_fc1 = scalar + scalar + r(B * H) + r(D * H) + r(H * D)
    return {
        "inference": params + x + h + y,
        "activation": h + scalar,
        "training": params + x + targets + max(forward, after_fc2, after_fc1),
    }


@pytest.mark.parametrize("device, block", [("cpu", 1), ("cuda", CUDA_BLOCK_BYTES)])
def test_toy_module_gives_the_bytes_computed_by_hand(device, block):
    peaks = estimate_module_memory(_toy, optimizer="sgd", device=device)
    want = _toy_bytes(block)
    assert peaks.params_bytes == 4 * 2 * H * D  # exact bytes, whatever the allocator
    assert peaks.inference_peak_bytes == want["inference"]
    assert peaks.activation_bytes == want["activation"]
    assert peaks.training_peak_bytes == want["training"]


def test_adamw_adds_two_states_per_parameter_on_the_toy():
    sgd = estimate_module_memory(_toy, optimizer="sgd", device="cpu")
    adamw = estimate_module_memory(_toy, device="cpu")
    # exp_avg and exp_avg_sq (2 x params) plus one 4-byte step counter per parameter; the step's
    # own temporaries stay below the backward peak here
    assert adamw.training_peak_bytes - sgd.training_peak_bytes == 2 * sgd.params_bytes + 2 * 4


def test_live_bytes_follows_what_autograd_holds():
    live = LiveBytes()  # real tensors here: the mode works on them too
    with live:
        a = torch.ones(10, requires_grad=True)  # 40 bytes
        b = (a * 2).exp()  # a * 2 is a temporary nothing saves; exp saves its output, b
        assert (live.current, live.peak) == (80, 120)
        s = b.sum()  # 4 bytes
        del b
        assert live.current == 84  # b is gone from Python but ExpBackward still holds it
        s.backward()  # the graph is freed with it; a.grad is made
        del s
    assert live.current == 80  # a and a.grad


# ---- language models ------------------------------------------------------------------------


def test_peak_holds_params_and_optimizer_state():
    cfg = _lm()
    res = estimate_memory(cfg, 64, batch=2)
    p = 4 * count_params(cfg)["total"]
    assert res.params_bytes == p
    assert res.inference_peak_bytes > p
    # steady-state AdamW step: parameters, gradients, exp_avg and exp_avg_sq all alive at once
    assert res.training_peak_bytes >= 4 * p
    sgd = estimate_memory(cfg, 64, batch=2, optimizer="sgd")
    assert sgd.training_peak_bytes >= 2 * p
    assert res.training_peak_bytes - sgd.training_peak_bytes >= 2 * p


def test_cuda_estimate_runs_foreach_adamw():
    # parameter-bound (8 tokens): torch's foreach AdamW, its default on CUDA, takes sqrt(v) of all
    # parameters at once, a fifth parameter-sized set on top of params, grads and two states
    cfg = _lm(d=64, vocab=512)
    cuda, cpu = (estimate_memory(cfg, 8, device=d) for d in ("cuda", "cpu"))
    assert cuda.training_peak_bytes >= 5 * cuda.params_bytes
    assert cpu.training_peak_bytes < 4.5 * cpu.params_bytes  # one parameter's temporary at a time


@pytest.mark.parametrize("kind", ["softmax", "hsm"])
def test_activation_memory_is_linear_in_T(kind):
    cfg = _lm(kind, max_seq_len=2**16)
    Ts = [2**k for k in range(10, 17, 2)]  # 1K, 4K, 16K, 64K
    results = [estimate_memory(cfg, T, device="cpu") for T in Ts]
    acts = [r.activation_bytes for r in results]
    assert abs(loglog_slope(Ts, acts) - 1.0) < 0.01
    # quadratic-free: bytes per token the same at 1K and 64K (a T² score matrix would be 64x)
    assert acts[-1] / Ts[-1] == pytest.approx(acts[0] / Ts[0], rel=0.01)
    # inference keeps no activations (no_grad): its transient is far below what training saves
    last = results[-1]
    assert last.inference_peak_bytes - last.params_bytes < last.activation_bytes / 2


def test_softmax_uses_the_flash_style_cpu_kernel():
    res = estimate_memory(_lm(), 128)
    assert "_scaled_dot_product_flash_attention_for_cpu" in res.attention_kernels
    assert "_scaled_dot_product_flash_attention_for_cpu_backward" in res.attention_kernels


def _peak_rss_growth(fn):
    """(result, growth of the peak resident set in bytes while fn ran); Linux resets VmHWM."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")

    def kib(key):
        line = next(ln for ln in status.read_text().splitlines() if ln.startswith(key))
        return int(line.split()[1]) * 1024

    before = kib("VmRSS:")
    out = fn()
    return out, kib("VmHWM:") - before


def test_estimate_at_one_million_tokens_allocates_nothing():
    cfg = _lm(d=512, n_layers=6, vocab=256, n_heads=8)
    T = 1_048_576
    estimate_memory(cfg, 1024)  # one-time torch initialisation out of the way
    t0 = time.perf_counter()
    res, growth = _peak_rss_growth(lambda: estimate_memory(cfg, T))
    elapsed = time.perf_counter() - t0
    # the logits alone would be 1 GiB, the activations about 227 GiB
    assert res.activation_bytes > 100 * 2**30
    assert growth < 64 * MiB, f"peak RSS grew by {growth / MiB:.0f} MiB"
    assert elapsed < 10, f"{elapsed:.1f} s: something scales with T"


def test_decode_bytes_are_the_analytic_state_and_match_a_real_state():
    T, batch = 48, 3
    for cfg in (_lm(), _lm("hsm"), _lm("ecp", segment_len=8)):
        res = estimate_memory(cfg, T, batch=batch)
        want = model_cost(cfg, T).decode_state * batch * 4
        assert res.decode_state_bytes == want
        assert res.decode_state_bytes_per_token == want / T
        # the state a real decode of T tokens holds
        model = build_model(cfg).eval()
        state = model.init_decode_state(batch, max_len=T)
        with torch.no_grad():
            for _ in range(T):
                _, state = model.step(torch.zeros(batch, 1, dtype=torch.long), state)
        assert tensor_numel(state) * 4 == want, cfg.layers[0].mixer.kind


def test_no_decode_bytes_for_models_that_cannot_decode():
    v1 = load_model_config(ROOT / "models" / "v1-double.yaml")
    res = estimate_memory(v1, v1.max_seq_len)
    assert res.decode_state_bytes is None and res.decode_state_bytes_per_token is None
    sliding = _lm("sliding_window", window=16)  # this mixer has no step()
    assert estimate_memory(sliding, 64).decode_state_bytes is None


def test_bf16_halves_param_and_decode_bytes():
    cfg = _lm()
    f32 = estimate_memory(cfg, 64, dtype=torch.float32)
    bf16 = estimate_memory(cfg, 64, dtype=torch.bfloat16)
    assert bf16.dtype == "bfloat16"
    assert 2 * bf16.params_bytes == f32.params_bytes
    assert 2 * bf16.decode_state_bytes == f32.decode_state_bytes
    assert bf16.activation_bytes < f32.activation_bytes


@pytest.mark.parametrize("case", family_cases(), ids=lambda c: c.id)
def test_every_family_example(case):
    res = estimate_memory(case.cfg, case.seq_len, batch=2)
    p = 4 * count_params(case.cfg)["total"]
    assert res.params_bytes == p
    assert res.inference_peak_bytes > p and res.training_peak_bytes >= 4 * p
    assert res.activation_bytes > 0
    can_decode = build_model(case.cfg, device="meta").can_decode()
    assert (res.decode_state_bytes is not None) == can_decode


def _mixer_lm(case) -> tuple[ModelConfig, int]:
    block = BlockConfig(mixer=case.cfg)
    cfg = ModelConfig(
        d_model=32,
        vocab_size=64,
        max_seq_len=256,
        pos_encoding="rope" if case.rope else "none",
        layers=(block, block),
    )
    # the shortest that fits (ECP needs its segment length to divide T; Combiner blocks)
    for T in (24, 30, 32, 40, 48, 60, 64, 120):
        try:
            cfg.check_seq_len(T)
            return cfg, T
        except ConfigError:
            continue
    raise AssertionError(f"no test length fits {case.id}")


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda c: c.id)
def test_every_mixer_example(case):
    cfg, T = _mixer_lm(case)
    res = estimate_memory(cfg, T, batch=2)
    assert res.params_bytes == 4 * count_params(cfg)["total"]
    assert res.inference_peak_bytes > res.params_bytes
    assert res.training_peak_bytes >= 4 * res.params_bytes
    assert res.activation_bytes > 0


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_model(path):
    cfg = load_model_config(path)
    res = estimate_memory(cfg, cfg.max_seq_len)
    assert res.training_peak_bytes >= 4 * res.params_bytes > 0
    json.dumps(res.to_dict())  # plain data


def test_measure_on_cpu_reports_not_measured():
    cfg = _lm()
    res = measure_memory(cfg, 64, batch=2, dtype=torch.float32, device="cpu")
    assert res.method.startswith("not measured")
    assert res.inference_peak_bytes is None and res.training_peak_bytes is None
    assert res.activation_bytes is None
    est = estimate_memory(cfg, 64, batch=2)
    assert res.params_bytes == est.params_bytes
    assert res.decode_state_bytes == est.decode_state_bytes


class _CappedLiveBytes(LiveBytes):
    """LiveBytes that raises the CUDA allocator's error when more than ``limit`` bytes are live."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit

    def _see(self, t: torch.Tensor) -> None:
        super()._see(t)
        if self.limit is not None and self.current > self.limit:
            raise torch.cuda.OutOfMemoryError(f"{self.current} bytes live > {self.limit}")


class _CpuDevice:
    """The counter measure_memory uses, made of real CPU tensors counted by a LiveBytes mode, so
    the measuring code (otherwise GPU-only) runs here."""

    def __init__(self, limit: int | None = None) -> None:
        self.live = _CappedLiveBytes(limit)
        self.base = 0

    def start(self) -> None:
        gc.collect()
        self.base = self.live.current

    def clean(self) -> None:
        gc.collect()

    def current(self) -> int:
        return self.live.current - self.base

    def peak(self) -> int:
        return self.live.peak - self.base

    def reset_peak(self) -> None:
        self.live.reset_peak()


@pytest.mark.parametrize(
    "cfg, T",
    [(_lm(), 64), (_lm("hsm"), 64), (_lm(d=64, vocab=512), 8)],
    ids=["softmax", "hsm", "param-bound"],
)
def test_measuring_real_tensors_gives_the_estimate(cfg, T):
    dev = _CpuDevice()
    with dev.live:
        got = _measure(cfg, T, 2, torch.float32, "adamw", torch.device("cpu"), dev)
    est = estimate_memory(cfg, T, batch=2, device="cpu")  # exact bytes, per-parameter AdamW
    assert got.method.startswith("measured")
    for key in ("params_bytes", "inference_peak_bytes", "training_peak_bytes", "activation_bytes"):
        assert getattr(got, key) == getattr(est, key), key
    assert got.attention_kernels == est.attention_kernels
    assert dev.live.current == dev.base  # everything measure_memory made is freed


def test_out_of_memory_propagates_with_the_memory_freed():
    cfg = _lm()
    need = estimate_memory(cfg, 64, batch=2, device="cpu").training_peak_bytes
    dev = _CpuDevice(limit=need // 2)
    with dev.live, pytest.raises(torch.cuda.OutOfMemoryError) as info:
        _measure(cfg, 64, 2, torch.float32, "adamw", torch.device("cpu"), dev)
    gc.collect()
    # the traceback (still held here) no longer keeps the model, optimizer or activations alive
    assert info.value.__traceback__ is not None
    assert dev.live.current == dev.base


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="optimizer"):
        estimate_memory(_lm(), 64, optimizer="adam")
    with pytest.raises(ValueError, match="device"):
        estimate_memory(_lm(), 64, device="mps")
    with pytest.raises(ConfigError):  # ECP needs T divisible by its segment length
        estimate_memory(_lm("ecp", segment_len=8), 63)


# ---- the estimate against the CUDA allocator --------------------------------------------------

# Tolerance 20%. Not modelled, with their size at these shapes: cuBLAS/cuBLASLt workspaces
# (measure_memory excludes them too, but an algorithm may ask for more on the first big GEMM; tens
# of MiB at most, a few %); blocks the caching allocator leaves unsplit (< 1 MiB per live block
# larger than 1 MiB, a few % with ~150 live activations); buffers inside SDPA backward kernels
# (one layer's fp32 accumulators, ~1%); the GPU's SDPA backend saving another log-sum-exp layout
# (< 1%). That sums to under 10%; 20% leaves room for backend choices not measured here (no GPU
# was available when this was written) and still fails on a wrong procedure: the activation-bound
# case misses by far more if attention were quadratic or the loss not saved, the parameter-bound
# case by more than 20% without the optimizer state (2 of its 4-5 parameter-sized sets) or the
# warm-up step.
GPU_CASES = {
    # activations dominate: ~3.8 GB of activations vs 76 MB of parameters
    "activation-bound": (_lm(d=512, n_layers=6, vocab=256, max_seq_len=8192, n_heads=8), 8192, 2),
    # parameters and AdamW state dominate: ~470M parameters (1.9 GB in fp32) at 256 tokens, so
    # the fixed workspaces stay a few % of even the bf16 inference peak
    "param-bound": (_lm(d=2048, n_layers=8, vocab=32000, n_heads=16), 256, 1),
}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", sorted(GPU_CASES))
def test_estimate_within_20_percent_of_cuda(name, dtype):
    cfg, T, batch = GPU_CASES[name]
    est = estimate_memory(cfg, T, batch=batch, dtype=dtype)
    got = measure_memory(cfg, T, batch=batch, dtype=dtype)
    assert got.method.startswith("measured")
    assert got.params_bytes == est.params_bytes
    for key in ("inference_peak_bytes", "training_peak_bytes", "activation_bytes"):
        e, m = getattr(est, key), getattr(got, key)
        assert abs(e - m) / m < 0.20, f"{key}: estimate {e / MiB:.0f} MiB, CUDA {m / MiB:.0f} MiB"


@pytest.mark.gpu
def test_cuda_out_of_memory_propagates_after_freeing():
    cfg = _lm(d=1024, n_layers=4, vocab=256, max_seq_len=2**17, n_heads=16)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    with pytest.raises(torch.cuda.OutOfMemoryError):  # the embeddings alone: 512 GiB
        measure_memory(cfg, 2**17, batch=1024, dtype=torch.float32)
    # the model (200 MB) and the token ids (1 GiB) are gone; only cuBLAS workspaces may stay
    assert torch.cuda.memory_allocated() - before < 64 * MiB


# ---- the optimizer state made up front: the bytes of a warm-up step plus a measured one -------


def _builder(cfg: ModelConfig, T: int, batch: int = 2, dtype: torch.dtype = torch.float32):
    def build():
        return build_in_dtype(cfg, dtype), torch.randint(0, cfg.vocab_size, (batch, T))

    return build


def _same(build, **kw) -> None:
    fast = estimate_module_memory(build, warmup=False, **kw)
    slow = estimate_module_memory(build, warmup=True, **kw)
    assert fast == slow


@pytest.mark.parametrize("case", family_cases(), ids=lambda c: c.id)
def test_every_family_example_gives_the_two_step_bytes(case):
    _same(_builder(case.cfg, case.seq_len), optimizer="adamw", device="cuda")


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda c: c.id)
def test_every_mixer_example_gives_the_two_step_bytes(case):
    cfg, T = _mixer_lm(case)
    _same(_builder(cfg, T), optimizer="adamw", device="cpu")


@pytest.mark.parametrize("optimizer, device", [("sgd", "cuda"), ("sgd", "cpu"), ("adamw", "cpu")])
def test_optimizers_and_devices_give_the_two_step_bytes(optimizer, device):
    case = family_cases()[0]
    _same(_builder(case.cfg, case.seq_len), optimizer=optimizer, device=device)


def test_bf16_gives_the_two_step_bytes():
    case = family_cases()[0]
    _same(_builder(case.cfg, case.seq_len, dtype=torch.bfloat16), optimizer="adamw", device="cuda")


class _Unused(nn.Module):
    """A parameter the loss never touches: AdamW makes no state for it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3, bias=False)
        self.unused = nn.Parameter(torch.zeros(100))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.fc(x).sum()


def test_a_parameter_without_gradient_falls_back_to_the_warm_up_step():
    def build():
        return _Unused(), torch.randn(4, 3)

    _same(build, optimizer="adamw", device="cpu")
    # the up-front state would have counted the unused parameter's two moments (800 bytes)
    peaks = estimate_module_memory(build, optimizer="adamw", device="cpu")
    sgd = estimate_module_memory(build, optimizer="sgd", device="cpu")
    assert peaks.training_peak_bytes - sgd.training_peak_bytes < 800


def test_init_optimizer_state_only_for_what_it_knows():
    p = nn.Parameter(torch.zeros(3))
    assert init_optimizer_state(make_optimizer("adamw", [p], foreach=False))
    assert not init_optimizer_state(torch.optim.AdamW([p], amsgrad=True))
    assert not init_optimizer_state(torch.optim.Adam([p]))
    assert not init_optimizer_state(torch.optim.SGD([p], lr=0.1, momentum=0.9))
    opt = make_optimizer("adamw", [p], foreach=True)
    init_optimizer_state(opt)
    # what torch's own first step leaves behind: the same keys, shapes and dtypes
    ref = make_optimizer("adamw", [q := nn.Parameter(torch.zeros(3))], foreach=True)
    q.grad = torch.zeros(3)
    ref.step()
    mine, theirs = opt.state[p], ref.state[q]
    assert mine.keys() == theirs.keys()
    for k in mine:
        assert (mine[k].shape, mine[k].dtype, mine[k].device) == (
            theirs[k].shape,
            theirs[k].dtype,
            theirs[k].device,
        )
