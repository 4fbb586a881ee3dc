"""helpers.fusion.examples: BN layers with random statistics, the forward fold on a convolution,
the small models fuse cannot fold, and rebuilt copies."""

from helpers import fusion
from helpers.fusion import examples

import keras
import numpy as np
import pytest

L = keras.layers

pytestmark = pytest.mark.usefixtures("seeded")


def test_random_statistics_draws_gamma_beta_mean_variance_in_their_ranges_and_order():
    stats = examples.random_statistics(50, np.random.default_rng(1), variance=(0.2, 0.3))
    gamma, beta, mean, var = stats
    assert all(s.shape == (50,) for s in stats)
    assert (0.5 <= gamma).all() and (gamma <= 2).all()
    assert (0.2 <= var).all() and (var <= 0.3).all()
    # the order of the draws is γ, β, μ, v: the same generator gives the same γ first
    assert np.array_equal(gamma, np.random.default_rng(1).uniform(0.5, 2, 50))
    assert beta.std() > 0.5 and mean.std() > 0.5


def test_random_statistics_errors_name_the_argument():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n"):
        examples.random_statistics(0, rng)
    with pytest.raises(ValueError, match="rng"):
        examples.random_statistics(3, 0)
    with pytest.raises(ValueError, match="variance"):
        examples.random_statistics(3, rng, variance=(2.0, 1.0))


def test_bn_with_statistics_is_built_and_normalizes_with_them():
    rng = np.random.default_rng(0)
    bn = examples.bn_with_statistics((None, 4), rng)
    gamma, beta, mean, var = bn.get_weights()
    x = np.ones((2, 4), np.float32)
    want = gamma * (x - mean) / np.sqrt(var + bn.epsilon) + beta
    np.testing.assert_allclose(bn(x, training=False).numpy(), want, rtol=1e-5)
    with pytest.raises(ValueError, match="input_shape"):
        examples.bn_with_statistics((4,), rng)


def test_forward_fold_errors_exact_with_valid_padding_wrong_on_the_border_with_same():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 7, 7, 3)).astype(np.float32)
    bn = examples.bn_with_statistics(images.shape, rng)
    err = examples.forward_fold_errors(bn, images)
    assert list(err.index) == ["valid", "same"] and err.index.name == "Conv2D padding"
    assert err.loc["valid"].max() < 1e-4
    assert err.loc["same", "all pixels"] > 1e-2 and err.loc["same", "interior pixels"] < 1e-4
    with pytest.raises(ValueError, match="paddings"):
        examples.forward_fold_errors(bn, images, paddings=("causal",))
    with pytest.raises(ValueError, match="images"):
        examples.forward_fold_errors(bn, images[:, :2])


def test_unfoldable_cases_fold_nothing():
    cases = examples.unfoldable_cases(seed=0)
    assert len(cases) == 5
    for label, model in cases.items():
        _, report = fusion.fuse(model)
        assert report.records and not report.folded, label


def test_small_model_sets_random_statistics_and_folds_when_it_can():
    model = examples.small_model(L.BatchNormalization(), L.Dense(3), seed=1)
    bn = model.layers[0]
    assert not np.allclose(bn.moving_variance.numpy(), 1.0)
    assert bn.name == "batch_normalization"  # the session was reset
    _, report = fusion.fuse(model)
    assert [r.action for r in report.records] == ["folded into next"]
    with pytest.raises(ValueError, match="layers"):
        examples.small_model()


def test_random_bn_weights_change_only_the_bn_statistics():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()])
    weights = examples.random_bn_weights(model, seed=0)
    old = model.get_weights()
    assert np.array_equal(weights[0], old[0]) and np.array_equal(weights[1], old[1])
    assert all(not np.array_equal(w, o) for w, o in zip(weights[2:], old[2:]))
    assert weights[-1].min() >= 0.1 and weights[-1].max() <= 2  # moving variance
    assert all(np.array_equal(a, b) for a, b in zip(weights, examples.random_bn_weights(model)))


def test_rebuilt_is_a_new_model_with_the_weights_given():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()])
    weights = examples.random_bn_weights(model, seed=0)
    copy = examples.rebuilt(model, weights, seed=0)
    assert copy is not model and [type(x) for x in copy.layers] == [type(x) for x in model.layers]
    assert all(np.allclose(a, b) for a, b in zip(copy.get_weights(), weights))
    with pytest.raises(ValueError, match="Sequential"):
        inp = keras.Input((4,))
        examples.rebuilt(keras.Model(inp, L.Dense(3)(inp)), weights)
