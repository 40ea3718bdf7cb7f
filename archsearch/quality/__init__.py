"""Quality measurement: data loaders, tasks, the fair evaluation protocol and the training run."""
