"""Equal-budget tuning: one Optuna study per loss, then the best configuration retrained over seeds."""
