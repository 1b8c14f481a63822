"""How input paths name their cases (:mod:`pevm.inputs.discover`)."""
from __future__ import annotations

from pevm.inputs.discover import snapshot_name, snapshot_network


def test_a_snapshot_is_named_by_its_block_number_with_or_without_the_prefix() -> None:
    # the corpus names snapshot directories 13217637; copies (the device check's)
    # name them mainnet-13217637: one case either way, so that the bench and the
    # simulation of the same block match up
    assert snapshot_name("corpus/mainnet/13217637") == "mainnet-13217637"
    assert snapshot_name("blocks/mainnet-13217637/") == "mainnet-13217637"


def test_a_snapshot_prefixed_by_case_name_keeps_its_fork() -> None:
    fork = snapshot_network("corpus/mainnet/13217637")
    assert fork != "mainnet"
    assert snapshot_network("blocks/mainnet-13217637") == fork
    assert snapshot_network("blocks/my-block") == "mainnet"
