"""Final hypervolume of the multi-objective sampler vs random search, same space, trials and seed.

    python benchmarks/search_samplers.py                       # quickstart.yaml, 16 trials, seed 0
    python benchmarks/search_samplers.py --samplers tpe,nsga2,random --trials 24 --seed 1

Each sampler gets its own study (SQLite under --out, so a re-run resumes instead of repeating
work). The hypervolumes are computed in one normalised objective space shared by all the
studies (best value seen in any study -> 0; the worst, pushed out by 10 % of the range -> 1),
so they compare directly; the raw reference point is printed too. Prints one table and writes
``hypervolume.csv`` (the history per trial) and ``hypervolume.png`` under --out.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", default="quickstart")
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samplers", default="tpe,random")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-samplers"))
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from archsearch.profiling.profiles import load_profile
    from archsearch.quality.tasks import make_task
    from archsearch.search.loop import Search
    from archsearch.search.report import StudyData, shared_normalisation
    from archsearch.search.space import load_space
    from archsearch.search.storage import open_storage, storage_url
    from archsearch.search.study import open_study, settings_from

    space = load_space(args.space)
    settings = settings_from(space, profile=load_profile(args.profile))
    task = make_task(settings.task, settings.task_options, seq_len=space.seq_len)
    args.out.mkdir(parents=True, exist_ok=True)
    data: dict[str, StudyData] = {}
    wall: dict[str, float] = {}
    for name in args.samplers.split(","):
        url = storage_url(args.out / f"{name}-seed{args.seed}.db")
        study = open_study(
            settings,
            open_storage(url),
            f"{space.name}-{name}",
            sampler=name,
            seed=args.seed,
            n_trials=args.trials,
        )
        t0 = time.perf_counter()
        Search(study, settings, task=task).run(args.trials)
        wall[name] = time.perf_counter() - t0
        data[name] = StudyData.of_study(study)

    # one normalisation for every study: the ideal and the reference over all feasible points
    norm = shared_normalisation(list(data.values()))
    if norm is None:
        raise SystemExit("no study has a feasible complete trial: no hypervolume to compare")
    ideal, ref = norm
    print(
        f"space {space.name}, {args.trials} trials, seed {args.seed}, objectives "
        f"{settings.objectives} (minimisation vectors)"
    )
    print(f"ideal {ideal}\nreference {ref}")
    print(f"{'sampler':<8} {'final HV':>9} {'complete':>9} {'front':>6} {'wall s':>8}")
    rows = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, d in data.items():
        hv = d.hypervolume_history((ideal, ref))
        done = len(d.complete())
        print(f"{name:<8} {hv[-1]:>9.4f} {done:>9} {len(d.front()):>6} {wall[name]:>8.1f}")
        rows += [{"sampler": name, "trial": i, "hypervolume": v} for i, v in enumerate(hv)]
        ax.plot(range(len(hv)), hv, marker="o", ms=3, label=name)
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume (shared normalisation)")
    ax.set_title(f"{space.name}: {args.trials} trials, seed {args.seed}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "hypervolume.png", dpi=110)
    with (args.out / "hypervolume.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["sampler", "trial", "hypervolume"])
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}/hypervolume.csv, {args.out}/hypervolume.png")


if __name__ == "__main__":
    main()
