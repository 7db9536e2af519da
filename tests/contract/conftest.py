"""The contract runners drive the kits shipped in ``herald.testing``; rewrite their asserts so a
failure shows the compared values (as a third party's conftest does, see docs/guides/adapters.md)."""

import pytest

pytest.register_assert_rewrite("herald.testing")
