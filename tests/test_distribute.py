"""Multi-device training (``tf.distribute``), checked on two logical CPU devices in a fresh process: the device
split must be configured before TensorFlow starts, which the rest of the test session has already done."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent('''
    import contextlib, json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from lab_utils.nn import models
    from lab_utils.core import profiles
    from lab_utils.evaluation import latents
    from lab_utils.training import debiasing, trainers, variants
    from lab_utils.data.dataset import FaceDataset

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    x = rng.random((16, 64, 64, 3), dtype=np.float32)
    y = (np.arange(16) % 2).astype(np.float32)[:, None]

    def update_norm(build, strategy, loss=None):
        """Size of one SGD step on the same batch of 16 (two replicas see 8 each)."""
        keras.utils.set_random_seed(0)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        before = [v.numpy().copy() for v in model.trainable_weights]
        data = (x, y) if loss or isinstance(model, debiasing.DBVAE) else (x,)
        model.fit(tf.data.Dataset.from_tensor_slices(data).batch(16), epochs=1, verbose=0)
        return float(np.sqrt(sum(((v.numpy() - b) ** 2).sum() for v, b in zip(model.trainable_weights, before))))

    builds = {
        "cnn": (models.build_cnn, keras.losses.BinaryCrossentropy(from_logits=True)),
        "vae": (lambda: models.VAE(latent_dim=8, seed=0), None),
        "dbvae": (lambda: debiasing.DBVAE(latent_dim=8, seed=0), None),
    }
    ratios = {name: update_norm(b, mirrored, loss) / update_norm(b, None, loss) for name, (b, loss) in builds.items()}

    n = 64
    images = rng.integers(0, 256, (2 * n, 64, 64, 3), dtype=np.uint8)
    train = FaceDataset(images, np.r_[np.ones(n), np.zeros(n)].astype(np.float32), name="tiny")
    profile = profiles.PROFILES["smoke"].with_overrides(batch_size=16, latent_dim=8)
    variant = variants.Variant("dbvae_max", resample=True, rule="max")
    model, record = variants.train_variant(variant, train, profile, seed=0, epochs=2, verbose=0,
                                              strategy=mirrored)
    print("RESULT" + json.dumps({
        "ratios": ratios,
        "same_strategy": model.distribute_strategy is mirrored,
        "replicas": mirrored.num_replicas_in_sync,
        "recomputes": len(record["resampling_log"]),
        "losses": record["history"]["loss"],
        "probs_shape": list(trainers.predict_face_probs(model, train).shape),
        "means_shape": list(latents.encode_faces(model, train).shape),
    }))
''')


def test_mirrored_strategy_takes_the_same_size_steps_and_trains_a_variant():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT"):])
    assert result["replicas"] == 2
    # Replicas' gradients are summed; without per-replica scaling of the loss the step is twice as large.
    for name, ratio in result["ratios"].items():
        assert 0.8 < ratio < 1.25, (name, ratio)
    assert result["same_strategy"]
    assert result["recomputes"] == 2  # uniform first epoch, one resampling recompute
    assert len(result["losses"]) == 2 and all(np.isfinite(result["losses"]))
    # Keras' predict_on_batch would return every replica's copy of the batch (2x the rows).
    assert result["probs_shape"] == [128] and result["means_shape"] == [64, 8]

