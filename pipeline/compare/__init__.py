"""Defense comparison: every setting fine-tuned, attacked by the same suite and gated, over seeds."""
