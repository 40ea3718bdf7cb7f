"""The quality/compute search.

:mod:`~archsearch.search.space` (declarative spaces), :mod:`~archsearch.search.study` (a study's
settings and identity), :mod:`~archsearch.search.storage` (where it lives; heartbeats, recovery),
:mod:`~archsearch.search.pipeline` (one trial: sample, validate, profile, train, record),
:mod:`~archsearch.search.halving` (MO-ASHA), :mod:`~archsearch.search.loop` (the trial loop,
Ctrl-C), :mod:`~archsearch.search.run` (a whole search, local or with workers),
:mod:`~archsearch.search.results` and :mod:`~archsearch.search.report` (what it found).
"""
