"""What the models and trainers must do differently per Keras backend (TensorFlow, JAX or PyTorch).

Everything else in ``lab_utils`` is written with ``keras`` and ``keras.ops`` and runs on all three. What Keras
does not hide when training lives here: the per-replica loss scale and the scope of ``tf.distribute`` (JAX spreads a
batch with ``keras.distribution`` instead and needs neither), and JAX's shared EMA buffers. Which backend runs, its
devices and a quiet start are the foundation's (:mod:`lab_utils.core.backend`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from lab_utils.core.backend import name


def replicas(model: Any = None) -> int:
    """How many ``tf.distribute`` replicas split each batch: the model's strategy, else the one in scope.

    Always 1 on JAX and PyTorch, where ``keras.distribution`` computes the loss over the global batch.
    """
    if name() != "tensorflow":
        return 1
    if model is not None:
        return int(model.distribute_strategy.num_replicas_in_sync)
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def replica_mean(per_sample: Any) -> Any:
    """The batch mean as this replica's share of the global mean.

    Under ``tf.distribute`` each replica sees 1/n of the batch and the replicas' gradients are summed, so an
    unscaled mean would take n-times-too-large steps (Keras' own losses scale the same way).
    """
    from keras import ops

    return ops.mean(per_sample) / replicas()


@contextlib.contextmanager
def training_scope(model: Any) -> Iterator[None]:
    """Compile and fit inside the ``tf.distribute`` strategy the model was built under (if any)."""
    if name() == "tensorflow":
        with model.distribute_strategy.scope():
            yield
    else:
        yield


def unalias_after_fit(model: Any) -> None:
    """Give every model variable its own buffer after ``fit()``.

    On JAX, Keras writes the EMA weights into the model by sharing the optimizer's arrays; the next jitted predict
    donates the model's buffers and so deletes the optimizer's copies, and saving the model then fails with "Array
    has been deleted". A copy per variable, once per ``fit()``, breaks the sharing.
    """
    if name() != "jax":
        return
    from keras import ops

    for variable in model.variables:
        variable.assign(ops.copy(variable.value))


