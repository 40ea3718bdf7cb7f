"""The quality/compute search: declarative spaces (``space``); the Optuna study comes next."""
