"""helpers.clipping.recording: the model that reports what its optimizer applied."""

from helpers.clipping import recording, reference

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_clipping import Keep, tiny_model, tiny_problem

pytestmark = pytest.mark.usefixtures("seeded_module")


def test_tf_angle_matches_numpy():
    rng = np.random.default_rng(0)
    a = [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    b = [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    flat = lambda xs: np.concatenate([x.ravel() for x in xs])  # noqa: E731
    assert float(recording._tf_angle_degrees(a, b)) == pytest.approx(
        reference.angle_between(flat(a), flat(b)), abs=1e-4
    )


@pytest.mark.parametrize(
    "clip",
    [{}, {"clipvalue": 0.5}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}],
    ids=lambda c: str(c),
)
def test_gradient_norm_model_records_what_the_optimizer_applied(clip):
    X, y = tiny_problem()
    inner = tiny_model()
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, inner(X, training=True))
    grads = [g.numpy() for g in tape.gradient(loss, inner.trainable_variables)]
    lr = 0.01
    if "clipvalue" in clip:
        clipped = [reference.clip_by_value(g, clip["clipvalue"]) for g in grads]
    elif "clipnorm" in clip:
        clipped = [reference.clip_by_norm(g, clip["clipnorm"]) for g in grads]
    elif "global_clipnorm" in clip:
        clipped, _ = reference.clip_by_global_norm(grads, clip["global_clipnorm"])
    else:
        clipped = grads
    w0 = [v.numpy() for v in inner.trainable_variables]

    model = recording.GradientNormModel(tiny_model())
    for a, b in zip(w0, model.inner.trainable_variables):  # same start as the reference model
        np.testing.assert_array_equal(a, b.numpy())
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=lr, **clip))
    keep = Keep()
    model.fit(X, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[keep])
    (logs,) = keep.logs
    w1 = [v.numpy() for v in model.inner.trainable_variables]
    step = [a - b for a, b in zip(w0, w1)]
    flat = lambda xs: np.concatenate([x.ravel() for x in xs])  # noqa: E731
    np.testing.assert_allclose(flat(step), lr * flat(clipped), rtol=1e-4, atol=1e-7)
    assert logs["batch_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert logs["grad_norm"] == pytest.approx(reference.global_norm(grads), rel=1e-5)
    assert logs["update_norm"] == pytest.approx(lr * reference.global_norm(clipped), rel=1e-4)
    assert logs["update_angle"] == pytest.approx(
        reference.angle_between(flat(grads), flat(clipped)), abs=0.05
    )
    if clip:
        assert logs["grad_norm"] > 1.0  # clipping was active in this test


def test_gradient_norm_model_rejects_non_models():
    with pytest.raises(ValueError, match="model"):
        recording.GradientNormModel("not a model")
