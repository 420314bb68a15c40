"""How the models learn: trainers, adaptive resampling, weighted batches, named variants."""
