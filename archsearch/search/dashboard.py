"""A study in optuna-dashboard: its learning curves as a dashboard plot, and the web server.

Optuna keeps intermediate values (``trial.report``) for single-objective studies only, and the
dashboard's own "Intermediate values" chart draws nothing for a multi-objective one. Every trial
that trained keeps its whole learning curve in its ``curve`` user attribute (``[tokens,
value]`` at each evaluation), so :func:`publish_curves` draws them all as one plotly figure
saved with ``optuna_dashboard.save_plotly_graph_object``, which the dashboard shows on the
study's page; :func:`serve` keeps it current while the study runs. See docs/search.md,
"Storage and workers". optuna-dashboard is an optional extra (``archsearch[dashboard]``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import optuna

from archsearch.errors import ConfigError
from archsearch.quality.tasks import get_task
from archsearch.search.results import trial_record
from archsearch.search.storage import repeating
from archsearch.search.study import load_settings

#: the id of the learning-curve figure on the study's dashboard page
CURVES_ID = "learning-curves"
INSTALL = "pip install 'archsearch[dashboard]' (or: pip install optuna-dashboard)"


def require_dashboard() -> Any:
    """The ``optuna_dashboard`` module, or a one-line error with the pip command."""
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError(
            "archsearch dashboard", got="optuna-dashboard is not installed", allowed=INSTALL
        ) from None
    return optuna_dashboard


class _Figure:
    """What ``save_plotly_graph_object`` needs of a plotly figure (plotly itself is not
    needed: the dashboard draws the JSON in the browser)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_json(self) -> str:
        return json.dumps(self.data)


def curve_metric(study: optuna.Study) -> str:
    """The task metric the study's curves hold (``bits_per_byte``, ``accuracy``, ...)."""
    return get_task(load_settings(study)["task"]["name"], field="task").metric


def curves_figure(study: optuna.Study) -> dict[str, Any]:
    """A plotly figure (as JSON data) of every trained trial's learning curve: the task metric
    against training tokens, a solid line for a complete trial, dotted for one stopped early."""
    metric = curve_metric(study)
    objectives = list(study.metric_names or [])
    traces = []
    for t in study.get_trials(deepcopy=False):
        pts = [(x, y) for x, y in t.user_attrs.get("curve") or [] if x > 0 and y is not None]
        if not pts:
            continue
        r = trial_record(t, objectives)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"#{t.number} {r.label} ({r.outcome})",
                "x": [x for x, _ in pts],
                "y": [y for _, y in pts],
                "line": {"dash": "solid" if r.outcome == "complete" else "dot"},
            }
        )
    layout = {
        "title": {"text": f"Learning curves: held-out {metric} (dotted: stopped early)"},
        "xaxis": {"title": {"text": "training tokens"}, "type": "log"},
        "yaxis": {"title": {"text": metric}},
    }
    return {"data": traces, "layout": layout}


def publish_curves(study: optuna.Study) -> int:
    """Save the learning-curve figure on the study (replacing the previous one); the number of
    curves drawn."""
    dash = require_dashboard()
    fig = curves_figure(study)
    dash.save_plotly_graph_object(study, _Figure(fig), graph_object_id=CURVES_ID)
    return len(fig["data"])


def _fingerprint(study: optuna.Study) -> tuple[int, ...]:
    """Changes when a trial's curve is added (new trials, or a running one that finished)."""
    trials = study.get_trials(deepcopy=False)
    return tuple(len(t.user_attrs.get("curve") or []) for t in trials)


@contextlib.contextmanager
def curves_kept_current(
    study: optuna.Study, every: float, on_error: Callable[[str], None]
) -> Iterator[None]:
    """While the block runs, republish the curves every ``every`` seconds when they changed;
    a failed write (a locked or read-only storage) is reported once through ``on_error``."""
    state: dict[str, Any] = {"seen": None, "failed": False}

    def refresh() -> None:
        try:
            seen = _fingerprint(study)
            if seen != state["seen"]:
                publish_curves(study)
                state["seen"] = seen
        except Exception as e:  # the dashboard keeps serving without fresh curves
            if not state["failed"]:
                on_error(f"learning curves not saved on the study: {type(e).__name__}: {e}")
                state["failed"] = True

    refresh()
    with repeating(every, refresh, "archsearch-dashboard-curves"):
        yield


def make_server(storage: Any, host: str, port: int) -> Any:
    """optuna-dashboard's WSGI app on ``storage``, in a wsgiref server bound to host:port (not
    yet serving; port 0 picks a free one). A one-line error if the address is taken."""
    dash = require_dashboard()
    from wsgiref.simple_server import WSGIRequestHandler
    from wsgiref.simple_server import make_server as wsgi_server

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # one line per request: none
            pass

    try:
        return wsgi_server(host, port, dash.wsgi(storage), handler_class=_Quiet)
    except OSError as e:
        raise ConfigError("--port", port, f"a free port on {host} ({e.strerror})") from None
