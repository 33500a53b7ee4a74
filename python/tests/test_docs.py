"""The examples in the package's docstrings run as written."""

from __future__ import annotations

import doctest

import pytest

import kapsel
import kapsel._files
import kapsel.errors
import kapsel.fsspec


@pytest.mark.parametrize("module", [kapsel, kapsel._files, kapsel.errors, kapsel.fsspec])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if module is not kapsel.fsspec:  # its examples need a bucket
        assert result.attempted > 0


def test_every_public_name_has_a_docstring():
    for name in kapsel.__all__:
        obj = getattr(kapsel, name)
        if callable(obj) or isinstance(obj, type):
            assert obj.__doc__, name
