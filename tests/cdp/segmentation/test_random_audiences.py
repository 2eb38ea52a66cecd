"""Random audiences over the fixed dataset: the compiled query and the brute-force reference
agree on every one, in full and restricted to a random set of ids (the incremental path).
Run with --hypothesis-show-statistics to see how often audiences select none, some or all."""

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from .strategies import AstStrategies, dataset_values, stored_values

RANDOM = settings(
    max_examples=300,
    deadline=None,
    # One dataset per test function, shared read-only by every example.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def audiences(store):
    """Literals drawn from the dataset field by field; shallow audiences test single operators
    at the data's edges, deep ones the combinations."""
    if not hasattr(store, "audiences"):
        shapes = AstStrategies(dataset_values(stored_values(store.sandbox)))
        store.audiences = st.one_of(shapes.audiences(max_depth=1), shapes.audiences(max_depth=3))
    return store.audiences


def subjects(store, audience):
    return sorted(pk for kind, pk in store.names if kind == audience.subject)


@RANDOM
@given(data=st.data())
def test_compiled_audiences_equal_the_reference(store, data):
    audience = data.draw(audiences(store), label="audience")
    compiled = store.compiled(audience)
    assert compiled == store.reference.members(audience)
    size = "none" if not compiled else "all" if len(compiled) == len(subjects(store, audience)) else "some"
    event(f"members: {size}")


@RANDOM
@given(data=st.data())
def test_restricted_evaluation_equals_full_evaluation_on_those_ids(store, data):
    audience = data.draw(audiences(store), label="audience")
    some = set(data.draw(st.lists(st.sampled_from(subjects(store, audience)), max_size=4), label="ids"))
    assert store.compiled(audience, restrict_to_ids=some) == store.compiled(audience) & some
