"""Running one benchmark configuration: its settings, the methods and models, the epoch
loop with model selection, the run cache and checkpoints."""
