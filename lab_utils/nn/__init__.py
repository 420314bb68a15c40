"""The models (CNN, VAE, DB-VAE), their losses, and the one place that knows the Keras backend."""
