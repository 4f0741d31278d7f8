"""The method: dataset formats, sparsification, masks, models, losses, metrics (pure, testable)."""
