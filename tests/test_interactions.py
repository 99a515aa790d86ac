import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdl_wrap import Interactions


def test_csr_groups_items_per_user_in_order():
    data = Interactions([2, 0, 2, 1, 0], [3, 1, 0, 2, 0], n_users=4, n_items=5)
    csr = data.csr
    assert csr.indptr.tolist() == [0, 2, 3, 5, 5]
    assert csr.items.tolist() == [0, 1, 2, 0, 3]
    assert data.users[csr.rows].tolist() == [0, 0, 1, 2, 2]
    assert data.items[csr.rows].tolist() == csr.items.tolist()
    assert csr.counts().tolist() == [2, 1, 2, 0]


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 14)), unique=True, max_size=60),
       st.lists(st.integers(0, 9), max_size=12))
@settings(max_examples=60, deadline=None)
def test_gather_and_contains_match_a_python_reference(pairs, users):
    data = Interactions([u for u, _ in pairs], [i for _, i in pairs], 10, 15)
    position, items = data.csr.gather(users)
    expected = [(p, i) for p, u in enumerate(users) for i in sorted(j for v, j in pairs if v == u)]
    assert list(zip(position.tolist(), items.tolist())) == expected
    grid_u, grid_i = np.meshgrid(np.arange(10), np.arange(15), indexing="ij")
    member = data.contains(grid_u, grid_i)
    assert {(int(u), int(i)) for u, i in zip(*np.nonzero(member))} == set(pairs)


def test_arrays_are_copied_and_read_only():
    users = np.array([0, 1])
    data = Interactions(users, [0, 1], 2, 2, noisy=np.array([False, True]))
    users[0] = 1
    assert data.users[0] == 0
    with pytest.raises(ValueError):
        data.users[0] = 1
    assert data.clean().items.tolist() == [0]
    assert len(data.select([1])) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(users=[0, 1], items=[0], n_users=2, n_items=2), "equal lengths"),
        (dict(users=[0, 2], items=[0, 1], n_users=2, n_items=2), "user id 2 is out of range"),
        (dict(users=[0, 1], items=[-1, 1], n_users=2, n_items=2), "item id -1 is out of range"),
        (dict(users=[0.0], items=[1], n_users=2, n_items=2), "integer ids"),
        (dict(users=[[0]], items=[[1]], n_users=2, n_items=2), "one-dimensional"),
        (dict(users=[0, 0], items=[1, 1], n_users=2, n_items=2), "duplicate interaction"),
        (dict(users=[0], items=[1], n_users=0, n_items=2), "n_users must be a positive"),
        (dict(users=[0], items=[1], n_users=2, n_items=2, noisy=[1]), "must be bool"),
        (dict(users=[0], items=[1], n_users=2, n_items=2, noisy=[True, False]), "shape"),
    ],
)
def test_bad_input_raises_a_clear_error(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Interactions(**kwargs)


def test_union_requires_the_same_id_space():
    a = Interactions([0], [0], 2, 3)
    assert len(a.union(Interactions([1], [2], 2, 3))) == 2
    with pytest.raises(ValueError, match="id spaces differ"):
        a.union(Interactions([1], [2], 2, 4))
