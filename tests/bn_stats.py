"""Random BN statistics far from the identity: shared by the tests of helpers.fusion."""


def stats(rng, n, scale=True, center=True):
    """(γ, β, moving mean, moving variance) for `n` channels; γ or β None when the BN has none.

    γ has either sign and a magnitude from 0.2 to 3, so that a fold that drops or misplaces it
    shows; the variances go down to 0, where ε matters.
    """
    return (
        rng.uniform(0.2, 3.0, n) * rng.choice([-1, 1], n) if scale else None,
        rng.normal(size=n) if center else None,
        rng.normal(size=n) * 2,
        rng.uniform(0.0, 4.0, n),
    )
