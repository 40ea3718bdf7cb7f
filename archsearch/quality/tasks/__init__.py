"""Quality tasks: what a variant is trained on, and the metric it is judged by.

One module per task, each a :class:`Task` subclass with its options dataclass, registered with
``@register_task("<name>")`` (see CONTRIBUTING.md, "Adding a task"). Importing this package
registers the shipped tasks:

=========  ==============================================  ================================
task       data                                            metric (held out)
=========  ==============================================  ================================
``lm``     bytes of a corpus (``archsearch.quality.data``)  bits per byte (lower is better);
           — the embedded stdlib-docs corpus by default    perplexity per byte; unigram
                                                           baseline of the same targets
``mqar``   multi-query associative recall, generated       accuracy on the queried values
           on the fly from a seed (Zoology)                (higher is better)
``scifar`` sequential CIFAR-10: the 32×32 image as 1024    classification accuracy
           gray (or 3072 RGB) pixel tokens                 (higher is better)
=========  ==============================================  ================================

Every task draws training batches from a seeded generator, computes the training loss through the
model's :class:`~archsearch.model.transformer.LanguageModel` interface and evaluates on held-out
data the training batches never touch.
"""

from archsearch.quality.tasks._base import (
    TASKS,
    Task,
    eval_mode,
    get_task,
    make_task,
    register_task,
    task_names,
)

# each module registers its task; the import order is the order names are listed in
from archsearch.quality.tasks.lm import LMTask, LMTaskConfig  # noqa: I001
from archsearch.quality.tasks.mqar import MQARTask, MQARTaskConfig
from archsearch.quality.tasks.scifar import SCIFARTask, SCIFARTaskConfig

__all__ = [
    "TASKS",
    "LMTask",
    "LMTaskConfig",
    "MQARTask",
    "MQARTaskConfig",
    "SCIFARTask",
    "SCIFARTaskConfig",
    "Task",
    "eval_mode",
    "get_task",
    "make_task",
    "register_task",
    "task_names",
]
