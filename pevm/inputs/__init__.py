"""Block inputs: every format pevm reads, turned into cases of :class:`~pevm.task.BlockTask`.

- :mod:`pevm.inputs.blockchain_tests` -- BlockchainTests JSON (ethereum/tests,
  execution-spec-tests, pevm's generated fixtures);
- :mod:`pevm.inputs.mainnet` -- mainnet snapshot directories;
- :mod:`pevm.inputs.chain` -- a py-evm chain (the Python API);
- :mod:`pevm.inputs.discover` -- from command-line paths to cases.
"""
