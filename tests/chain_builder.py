"""Small py-evm chains for tests: funded keys, signed transfers, mined blocks."""
from __future__ import annotations

from typing import Sequence

from eth import constants
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks import CancunVM
from eth_keys import keys

KEYS = [keys.PrivateKey(bytes([i + 1]) * 32) for i in range(32)]
ADDRESSES = [k.public_key.to_canonical_address() for k in KEYS]
COINBASE = b"\xc0" * 20
GENESIS_PARAMS = {
    "coinbase": COINBASE, "difficulty": 0, "gas_limit": 30_000_000,
    "timestamp": 1_700_000_000, "extra_data": b"", "nonce": b"\x00" * 8,
    "mix_hash": constants.ZERO_HASH32, "base_fee_per_gas": 7,
    "parent_beacon_block_root": constants.ZERO_HASH32,
}


def new_chain(vm_class: type = CancunVM) -> MiningChain:
    """A fresh chain whose genesis funds every test key with 10 ether."""
    chain_class = MiningChain.configure("TestChain", vm_configuration=((0, vm_class),),
                                        chain_id=1)
    state = {address: {"balance": 10**19, "nonce": 0, "code": b"", "storage": {}}
             for address in ADDRESSES}
    return chain_class.from_genesis(AtomicDB(), GENESIS_PARAMS, state)


def transfer(chain: MiningChain, sender: int, to: bytes, value: int, nonce: int,
             ) -> object:
    vm = chain.get_vm()
    unsigned = vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=nonce, max_priority_fee_per_gas=2, max_fee_per_gas=100,
        gas=21_000, to=to, value=value, data=b"", access_list=())
    return unsigned.as_signed_transaction(KEYS[sender])


def mine(chain: MiningChain, transactions: Sequence[object]) -> object:
    """Mine ``transactions`` into the next block and return it."""
    result, _receipts, _computations = chain.mine_all(transactions, coinbase=COINBASE)
    return result.imported_block
