"""The properties of the sample bounds, declared with boundlab's decorator (collected by boundlab's pytest plugin)."""

from boundlab.empirical.lipschitz import conv_operator_norm
from boundlab.verification.properties import bound_property
from boundlab.verification.strategies import conv_cases, conv_layer_of

from sample_bounds.bounds import frobenius_bound, frobenius_no_k_bound


@bound_property(frobenius_bound, cases=conv_cases(), rtol=1e-9)
def test_sample_frobenius(check, case):
    layer = conv_layer_of(case)
    check.upper(conv_operator_norm(layer), check.bound(layer))


@bound_property(frobenius_no_k_bound, cases=conv_cases(), rtol=1e-9)
def test_sample_frobenius_no_k(check, case):
    layer = conv_layer_of(case)
    check.upper(conv_operator_norm(layer), check.bound(layer))
