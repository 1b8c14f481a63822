"""Small py-evm chains for tests: funded keys, signed transfers, mined blocks."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth import constants
from eth.abc import BlockAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks import CancunVM
from eth_keys import keys
from eth_typing import Address

KEYS = [keys.PrivateKey(bytes([i + 1]) * 32) for i in range(32)]
ADDRESSES = [Address(k.public_key.to_canonical_address()) for k in KEYS]
COINBASE = Address(b"\xc0" * 20)
GENESIS_PARAMS: dict[str, Any] = {
    "coinbase": COINBASE, "difficulty": 0, "gas_limit": 30_000_000,
    "timestamp": 1_700_000_000, "extra_data": b"", "nonce": b"\x00" * 8,
    "mix_hash": constants.ZERO_HASH32, "base_fee_per_gas": 7,
    "parent_beacon_block_root": constants.ZERO_HASH32,
}


def new_chain(vm_class: type[VirtualMachineAPI] = CancunVM) -> MiningChain:
    """A fresh chain whose genesis funds every test key with 10 ether."""
    chain_class = MiningChain.configure("TestChain", vm_configuration=((0, vm_class),),
                                        chain_id=1)
    state: dict[Address, Any] = {
        address: {"balance": 10**19, "nonce": 0, "code": b"", "storage": {}}
        for address in ADDRESSES}
    chain = chain_class.from_genesis(AtomicDB(), GENESIS_PARAMS, state)
    assert isinstance(chain, MiningChain)
    return chain


def transfer(chain: MiningChain, sender: int, to: Address, value: int, nonce: int,
             ) -> SignedTransactionAPI:
    # Cancun's builder: typed-transaction methods are not in py-evm's builder API
    builder: Any = chain.get_vm().get_transaction_builder()
    unsigned = builder.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=nonce, max_priority_fee_per_gas=2, max_fee_per_gas=100,
        gas=21_000, to=to, value=value, data=b"", access_list=())
    return unsigned.as_signed_transaction(KEYS[sender])


def mine(chain: MiningChain, transactions: Sequence[SignedTransactionAPI]) -> BlockAPI:
    """Mine ``transactions`` into the next block and return it."""
    result, _receipts, _computations = chain.mine_all(transactions, coinbase=COINBASE)
    return result.imported_block
