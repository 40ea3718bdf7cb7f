"""A short, fair training run of one variant on one task, with a fixed budget.

The recipe is the same for every model, so differences come from the architecture: AdamW
(β = 0.9, 0.95; weight decay on matrices and embeddings only), linear warm-up then cosine decay to
``min_lr_ratio · lr``, gradient clipping, bf16 autocast when the profile asks for it (GPU), optional
``torch.compile``, and seeded initialisation and data order. The budget is input tokens, optimizer
steps or training seconds (whichever ends first), or training FLOPs: with ``budget_flops`` every
model gets the same compute rather than the same data. The FLOPs of one window are the model's
exact analytic training FLOPs (:func:`~archsearch.model.costs.model_cost`, ``training_exact``;
docs/costs.md, "FLOP conventions"); the run trains on the whole number of windows nearest the
budget, the last step taking the windows left (a smaller batch), so the FLOPs spent are within
half a window of the budget (``flops_spent`` in the result). With a token, step or FLOPs budget
the run is deterministic on one machine and thread count, with a seconds budget it is not (how
far it gets depends on the machine's speed).

The learning curve: the task's held-out metrics at step 0 and at ``evals`` evenly spaced points of
the budget (the last one is the final result); by default as many points as fit in ~7% of the
run's compute, so evaluation stays a small share of the wall time (``eval_seconds`` in the
result). ``on_eval`` sees each point as it is made; the
search uses it for multi-fidelity decisions and may raise :class:`StopTraining` to stop a run
early. A non-finite training loss stops the run at once (``status: diverged``, with the step and
learning rate); Ctrl-C stops it with ``status: interrupted`` and the curve so far.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from archsearch.dataconf import MAX_BATCH, MAX_COUNT, check_int, check_number
from archsearch.errors import ConfigError, require
from archsearch.model.config import ModelConfig, model_config_to_dict
from archsearch.model.costs import model_cost
from archsearch.model.transformer import build_model
from archsearch.profiling.env import environment, torch_threads
from archsearch.profiling.profiles import Profile
from archsearch.quality.evaluate import MAX_AUTO_EVALS, auto_evals

if TYPE_CHECKING:
    from archsearch.quality.tasks import Task

Status = Literal["completed", "diverged", "interrupted", "stopped"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    budget_tokens: int | None = None
    """stop after this many input tokens (batch · seq_len per step)"""
    budget_steps: int | None = None
    budget_flops: float | None = None
    """stop after this many training FLOPs (exact analytic FLOPs; not with tokens or steps)"""
    budget_seconds: float | None = None
    """stop after this many seconds of training (evaluation time not counted)"""
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: float = 0.05
    """fraction of the budget spent warming the learning rate up linearly"""
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float | None = 1.0
    evals: int | None = None
    """held-out evaluations after step 0, evenly spaced over the budget; null: as many as fit in
    ~7% of the run's compute (1 to 8; :func:`~archsearch.quality.evaluate.auto_evals`)"""
    eval_at: tuple[float, ...] = ()
    """extra evaluation points, as fractions of the budget (the search's halving rungs)"""
    seed: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        budgets = (self.budget_tokens, self.budget_steps, self.budget_flops, self.budget_seconds)
        require(
            any(b is not None for b in budgets),
            "budget",
            None,
            "at least one of budget_tokens, budget_steps, budget_flops, budget_seconds",
        )
        if self.budget_flops is not None and self.budget_tokens is not None:
            raise ConfigError(
                "budget_flops", self.budget_flops, "either a FLOPs or a token budget, not both"
            )
        require(
            self.budget_flops is None or self.budget_steps is None,
            "budget_flops",
            self.budget_flops,
            "either a FLOPs or a step budget, not both",
        )
        highs = {"budget_tokens": MAX_COUNT, "budget_steps": MAX_COUNT, "budget_flops": 1e30}
        highs["budget_seconds"] = 1e7
        for name, high in highs.items():
            v = getattr(self, name)
            if v is not None:
                check_number(name, v, 0, high, open_low=True)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        require(self.lr > 0 and math.isfinite(self.lr), "lr", self.lr, "a positive number")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", self.min_lr_ratio, "0..1")
        require(0 <= self.warmup < 1, "warmup", self.warmup, "a fraction in [0, 1)")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            require(0 <= v < 1, name, v, "a number in [0, 1)")
        require(
            self.grad_clip is None or self.grad_clip > 0,
            "grad_clip",
            self.grad_clip,
            "a positive number or null",
        )
        require(self.evals is None or self.evals >= 1, "evals", self.evals, "an integer >= 1")
        for f in self.eval_at:
            require(0 < f <= 1, "eval_at", f, "fractions of the budget in (0, 1]")

    def eval_points(self, evals: int | None = None) -> list[float]:
        """Fractions of the budget at which the held-out metrics are evaluated (after step 0);
        ``evals`` stands in for an automatic :attr:`evals`."""
        n = self.evals or evals or MAX_AUTO_EVALS
        even = [k / n for k in range(1, n + 1)]
        return sorted({round(f, 12) for f in (*even, *self.eval_at)})

    @property
    def budget_mode(self) -> str:
        """What every run of this recipe gets the same amount of: flops, tokens, steps, seconds."""
        if self.budget_flops is not None:
            return "flops"
        if self.budget_tokens is not None:
            return "tokens"
        return "steps" if self.budget_steps is not None else "seconds"

    def total_steps(self, tokens_per_step: int) -> int | None:
        """Steps the token/step budgets allow (None: only a time or FLOPs budget)."""
        caps = []
        if self.budget_steps is not None:
            caps.append(self.budget_steps)
        if self.budget_tokens is not None:
            caps.append(max(1, math.ceil(self.budget_tokens / tokens_per_step)))
        return min(caps) if caps else None

    def total_windows(self, flops_per_window: int) -> int:
        """Windows (training sequences) a FLOPs budget pays for: the whole number nearest it."""
        if self.budget_flops is None:
            raise ValueError("total_windows needs a FLOPs budget")
        return max(1, round(self.budget_flops / flops_per_window))

    def lr_at(self, progress: float) -> float:
        """Learning rate at a fraction ``progress`` of the budget."""
        if progress < self.warmup:
            return self.lr * progress / self.warmup
        span = max(1e-12, 1.0 - self.warmup)
        cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - self.warmup) / span)))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cos)


class StopTraining(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by an ``on_eval`` callback to end a run early (e.g. a pruned search trial)."""


@dataclass
class CurvePoint:
    step: int
    tokens: int
    train_seconds: float
    lr: float
    train_loss: float | None
    """mean training loss over the steps since the previous point (None at step 0)"""
    metrics: dict[str, float]
    flops: int = 0
    """exact training FLOPs spent so far"""
    progress: float = 0.0
    """fraction of the budget spent"""


@dataclass
class TrainResult:
    status: Status
    reason: str
    task: str
    metric: str
    higher_is_better: bool
    final: dict[str, float] = field(default_factory=dict)
    """the held-out metrics of the last evaluation"""
    best: dict[str, Any] = field(default_factory=dict)
    """the best value of the metric along the curve, with its step and tokens"""
    baseline: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    tokens_seen: int = 0
    flops_spent: int = 0
    """exact training FLOPs of the steps taken (windows · training FLOPs per window)"""
    budget_flops: float | None = None
    flops_per_window: int = 0
    """the model's exact training FLOPs for one window of seq_len tokens"""
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    """seconds spent in held-out evaluations"""
    wall_seconds: float = 0.0
    tokens_per_s: float = 0.0
    params: int = 0
    curve: list[CurvePoint] = field(default_factory=list)
    train_losses: list[tuple[int, float]] = field(default_factory=list)
    """(step, loss) of every step"""
    config: dict[str, Any] = field(default_factory=dict)
    task_info: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train_losses"] = [list(p) for p in self.train_losses]
        return d


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    seen: set[int] = set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _autocast(device: str, dtype: str) -> contextlib.AbstractContextManager[Any]:
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=getattr(torch, dtype))


StepHook = Callable[[int, float, float, float], None]
"""(step, progress fraction, training loss, tokens/s)"""


def train(
    model_cfg: ModelConfig,
    task: Task,
    cfg: TrainConfig,
    profile: Profile | None = None,
    *,
    on_step: StepHook | None = None,
    on_eval: Callable[[CurvePoint], None] | None = None,
    on_done: Callable[[torch.nn.Module, TrainResult], None] | None = None,
) -> TrainResult:
    """Train a fresh model of ``model_cfg`` on ``task`` within ``cfg``'s budget; never raises for
    divergence, interruption or :class:`StopTraining` (they are the result's ``status``).
    ``on_done`` sees the trained model and the result at the end (to save the weights)."""
    profile = profile or Profile()
    task.check_model(model_cfg)
    check_budget_fits(cfg, task, model_cfg)
    wall0 = time.perf_counter()
    with torch_threads(profile.threads):
        run = _Run(model_cfg, task, cfg, profile, on_eval)
        run.loop(on_step)
    res = run.finish(time.perf_counter() - wall0)
    if on_done is not None:
        on_done(run.model, res)
    return res


class _Run:
    """One training run in progress: the model, optimiser and data stream, the step and
    training time so far, and the result record that collects the curve."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        task: Task,
        cfg: TrainConfig,
        profile: Profile,
        on_eval: Callable[[CurvePoint], None] | None,
    ) -> None:
        self.task, self.cfg, self.on_eval = task, cfg, on_eval
        device = profile.device
        self.device, self.dtype = device, profile.dtype
        torch.manual_seed(cfg.seed)
        self.model = build_model(model_cfg).to(device)
        self.fwd_model: Any = torch.compile(self.model) if cfg.compile else self.model
        self.opt = torch.optim.AdamW(
            _param_groups(self.model, cfg.weight_decay),
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            fused=device == "cuda",
        )
        self.scaler = torch.amp.GradScaler(device, enabled=self.dtype == "float16")
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.tokens_per_step = cfg.batch_size * task.seq_len
        self.flops_per_window = training_flops_per_window(model_cfg, task)
        if cfg.budget_flops is not None:
            self.windows_total: int | None = cfg.total_windows(self.flops_per_window)
            self.total: int | None = math.ceil(self.windows_total / cfg.batch_size)
        else:
            self.windows_total = None
            self.total = cfg.total_steps(self.tokens_per_step)
        self.res = TrainResult(
            status="completed",
            reason="",
            task=task.name,
            metric=task.metric,
            higher_is_better=task.higher_is_better,
            params=sum(p.numel() for p in self.model.parameters()),
            config={**asdict(cfg), "profile": profile.to_dict()},
            task_info=task.describe(),
            baseline=task.baseline(),
            model=model_config_to_dict(model_cfg),
            env=environment(device),
            budget_flops=cfg.budget_flops,
            flops_per_window=self.flops_per_window,
        )
        self.train_s, self.step, self.lr, self.windows = 0.0, 0, 0.0, 0
        self.since: list[float] = []
        """training losses since the previous evaluation"""

    def progress(self) -> float:
        if self.windows_total is not None:
            done = self.windows / self.windows_total
        else:
            done = self.step / self.total if self.total else 0.0
        return _progress(self.cfg, done, self.train_s)

    @property
    def tokens(self) -> int:
        return self.windows * self.task.seq_len

    def batch(self) -> int:
        """Windows in the next step: the batch size, or what is left of a FLOPs budget."""
        if self.windows_total is None:
            return self.cfg.batch_size
        return min(self.cfg.batch_size, self.windows_total - self.windows)

    def auto_evals(self) -> int:
        """Evaluations an automatic ``evals`` gives this run: what ~7% of its compute affords."""
        windows = self.windows_total
        if windows is None and self.total is not None:
            windows = self.total * self.cfg.batch_size
        tokens = None if windows is None else windows * self.task.seq_len
        return auto_evals(tokens, self.task.eval_forward_tokens(), len(self.cfg.eval_at))

    def evaluate(self, lr: float) -> None:
        """Held-out metrics at the current step, appended to the curve and shown to on_eval."""
        t0 = time.perf_counter()
        with _autocast(self.device, self.dtype):
            metrics = self.task.evaluate(self.fwd_model, self.device)
        self.res.eval_seconds += time.perf_counter() - t0
        since = self.since
        point = CurvePoint(
            step=self.step,
            tokens=self.tokens,
            train_seconds=round(self.train_s, 4),
            lr=lr,
            train_loss=sum(since) / len(since) if since else None,
            metrics=metrics,
            flops=self.windows * self.flops_per_window,
            progress=min(1.0, self.progress()),
        )
        self.res.curve.append(point)
        since.clear()
        if self.on_eval is not None:
            self.on_eval(point)

    def loop(self, on_step: StepHook | None) -> None:
        """Evaluate at step 0, train until the budget is spent, evaluating at the budget's
        evaluation points; divergence, Ctrl-C and :class:`StopTraining` end it early."""
        res, points, next_eval = self.res, self.cfg.eval_points(self.auto_evals()), 0
        try:
            self.evaluate(self.cfg.lr_at(0.0))
            self.model.train()
            while (progress := self.progress()) < 1.0:
                value = self.train_step(self.cfg.lr_at(progress))
                if value is None:
                    break
                progress = self.progress()
                if on_step is not None:
                    tps = self.tokens / self.train_s
                    on_step(self.step, min(progress, 1.0), value, tps)
                if next_eval < len(points) and progress >= points[next_eval]:
                    while next_eval < len(points) and progress >= points[next_eval]:
                        next_eval += 1
                    self.evaluate(self.lr)
        except KeyboardInterrupt:
            res.status = "interrupted"
            res.reason = f"interrupted at step {self.step} ({self.tokens} tokens)"
        except StopTraining as e:
            res.status = "stopped"
            res.reason = str(e) or f"stopped at step {self.step}"
        if res.status == "completed" and (not res.curve or res.curve[-1].step != self.step):
            self.evaluate(self.lr)  # the budget ran out between evaluation points

    def train_step(self, lr: float) -> float | None:
        """One optimiser step at learning rate ``lr``; its training loss, or None (and the
        result marked diverged) when the loss is not finite."""
        t0 = time.perf_counter()
        self.lr = lr
        for group in self.opt.param_groups:
            group["lr"] = lr
        batch = self.batch()
        x, y = self.task.sample(batch, self.gen)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        with _autocast(self.device, self.dtype):
            loss = self.task.loss(self.fwd_model, x, y)
        value = float(loss.detach())
        if not math.isfinite(value):
            self.res.status = "diverged"
            self.res.reason = (
                f"training loss became {value} at step {self.step + 1} (lr {lr:.3g}); "
                "lower --lr, raise warm-up or check the model"
            )
            return None
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.train_s += time.perf_counter() - t0
        self.step += 1
        self.windows += batch
        self.since.append(value)
        self.res.train_losses.append((self.step, value))
        return value

    def finish(self, wall_seconds: float) -> TrainResult:
        """The result with its totals, final and best metrics and the reason it ended."""
        res, step, task = self.res, self.step, self.task
        res.steps = step
        res.tokens_seen = self.tokens
        res.flops_spent = self.windows * self.flops_per_window
        res.train_seconds = self.train_s
        res.wall_seconds = wall_seconds
        res.tokens_per_s = res.tokens_seen / self.train_s if self.train_s > 0 else 0.0
        if res.curve:
            res.final = dict(res.curve[-1].metrics)
            pick = max if task.higher_is_better else min
            best = pick(res.curve, key=lambda p: p.metrics[task.metric])
            value = best.metrics[task.metric]
            res.best = {"value": value, "step": best.step, "tokens": best.tokens}
        if res.status == "completed":
            res.reason = f"budget reached after {step} steps ({res.tokens_seen} tokens)"
            if cfg_flops := self.cfg.budget_flops:
                res.reason += f", {res.flops_spent:.4g} of {cfg_flops:.4g} FLOPs"
        return res


def _progress(cfg: TrainConfig, done: float, train_s: float) -> float:
    """The fraction of the budget spent: ``done`` (of the steps or windows), or of the time."""
    p = done
    if cfg.budget_seconds is not None:
        p = max(p, train_s / cfg.budget_seconds)
    return p


def training_flops_per_window(model_cfg: ModelConfig, task: Task) -> int:
    """Exact training FLOPs of ``model_cfg`` for one window of the task (forward and backward;
    docs/costs.md, "FLOP conventions")."""
    return model_cost(model_cfg, task.seq_len).training_exact


def fewest_tokens(cfg: TrainConfig, seq_len: int, models: Iterable[ModelConfig]) -> int | None:
    """The fewest training tokens any run of ``models`` gets under ``cfg`` at window ``seq_len``
    (a FLOPs budget buys a costly model fewer windows); None with only a seconds budget."""
    if cfg.budget_flops is not None:
        costs = [model_cost(m, seq_len).training_exact for m in models]
        return min((cfg.total_windows(c) * seq_len for c in costs), default=None)
    steps = cfg.total_steps(cfg.batch_size * seq_len)
    return None if steps is None else steps * cfg.batch_size * seq_len


def check_budget_fits(cfg: TrainConfig, task: Task, model_cfg: ModelConfig | None = None) -> None:
    """A token budget smaller than one window of ``seq_len`` tokens is an error; so is a FLOPs
    budget smaller than one optimizer step (``batch_size`` windows) of ``model_cfg``."""
    if cfg.budget_tokens is not None and cfg.budget_tokens < task.seq_len:
        raise ConfigError(
            "budget_tokens",
            cfg.budget_tokens,
            f"at least one window of seq_len = {task.seq_len} tokens",
        )
    if cfg.budget_flops is not None and model_cfg is not None:
        step = training_flops_per_window(model_cfg, task) * cfg.batch_size
        if cfg.budget_flops < step:
            name = model_cfg.name or "the model"
            raise ConfigError(
                "budget_flops",
                f"{cfg.budget_flops:.4g}",
                f"at least one optimizer step of {name} ({step:.4g} FLOPs: {cfg.batch_size} "
                f"windows of T = {task.seq_len})",
            )
