"""What each named workload's block consists of: one planner per workload.

A planner, ``plan_<name>(plan)``, puts the contracts, balances and allowances the
workload needs into the genesis state of ``plan.s`` (a
:class:`~pevm.workloads.scenario.Scenario`) and adds one transaction intent per
position of the block; the positions in ``plan.hot`` (``round(conflict * txs)`` of
them, seeded-random) get the hot variant. :mod:`pevm.workloads.generate` names the
planners, validates the arguments and builds the block.

Per workload, cold (independent) transactions -> hot transactions:

transfers
    ether transfers, each from its own sender to a funded or brand-new account
    -> all sent by one account (a nonce and balance chain)
erc20
    ERC-20 transfer / approve / transferFrom with their own sender, owner and
    recipient -> transfer / transferFrom to one recipient (its balance slot)
amm
    swaps (both ways), addLiquidity, removeLiquidity, each on its own pool
    (``pools=K``: spread over pools 1..K-1) -> the same on pool 0 (its reserves)
hotspot
    incrementMine() (a per-caller counter) -> increment() (the global counter)
storage
    fill(caller, slots) (the caller's own slot range) -> fill(0, slots) (one key)
compute
    work(rounds) (a keccak chain stored in the caller's own slot; 100 rounds,
    about 1,600 EVM instructions per call) -> workShared(rounds) (one shared slot)
factory
    create / create2 / createAndDestroy on its own factory, kill or ping of a
    genesis child, creation transactions -> create / create2 / createAndDestroy
    on factory 0 (its nonce)
withdrawals
    deposits: plain transfers from their own senders to an exchange's hot wallet
    -> the hot wallet paying out to a distinct recipient (one sender, consecutive
    nonces; the default, conflict 1, is a block of withdrawals only)
mixed
    a mainnet-like blend: ether and token transfers, approvals, private-pool
    swaps, counters, storage, factories, creation transactions, a few reverting
    transfers -> hot AMM pools, an exchange wallet receiving tokens and ether,
    bots sending chains of transactions, the global counter, a shared key

``mixed`` has 3 hot pools unless ``pools`` says otherwise; its hot transactions
spread over several hot spots, so even at conflict 1 it is several chains, not one.
Shanghai and later ``mixed`` blocks also carry 16 withdrawals.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth.vm.forks import ShanghaiVM
from eth_hash.auto import keccak

from pevm.workloads import contracts as C
from pevm.workloads.scenario import ETHER, Account, Scenario

#: Token units (18 decimals) every token holder starts with.
TOKEN_FUNDING = 10**24
#: Largest generated token amount: a holder can send it a million times.
MAX_TOKEN_AMOUNT = 10**18
DEFAULT_MIXED_POOLS = 3


@dataclass
class Options:
    """The checked arguments a planner reads (as ``plan.o``)."""

    txs: int
    conflict: float
    pools: int | None
    slots: int


class Plan:
    """Per-workload planning helpers over a :class:`Scenario`."""

    def __init__(self, scenario: Scenario, options: Options) -> None:
        self.s = scenario
        self.rng = scenario.rng
        self.o = options
        self.hot = hot_positions(self.rng, options.txs, options.conflict)
        self._token_holders: set[tuple[bytes, bytes]] = set()
        self._approved: set[tuple[bytes, bytes, bytes]] = set()
        self._counter = 0

    def tokens_for(self, token: bytes, holder: bytes) -> None:
        if (token, holder) not in self._token_holders:
            self._token_holders.add((token, holder))
            self.s.erc20_credit(token, holder, TOKEN_FUNDING)

    def approve_once(self, token: bytes, owner: bytes, spender: bytes, amount: int) -> None:
        if (token, owner, spender) not in self._approved:
            self._approved.add((token, owner, spender))
            self.s.erc20_approve(token, owner, spender, amount)

    def token_amount(self) -> int:
        return self.rng.randrange(1, MAX_TOKEN_AMOUNT)

    def recipient(self, fresh_share: float = 0.3) -> bytes:
        """A funded pool account, or (``fresh_share`` of the time) a brand-new address."""
        if self.rng.random() < fresh_share:
            return self.s.fresh_address()
        return self.s.account().address

    def salt(self) -> bytes:
        self._counter += 1
        return keccak(b"pevm workloads: salt" + self.s.seed.to_bytes(8, "big", signed=True)
                      + self._counter.to_bytes(8, "big"))


def hot_positions(rng: Any, txs: int, conflict: float) -> frozenset[int]:
    """Exactly ``round(conflict * txs)`` transaction positions, seeded-random."""
    count = min(txs, int(math.floor(conflict * txs + 0.5)))
    return frozenset(rng.sample(range(txs), count))


# -- erc20 helpers shared by erc20 and mixed --------------------------------------
def _erc20_transfer(p: Plan, token: bytes, sender: Account, to: bytes, hot: bool,
                    label: str = "erc20.transfer") -> None:
    p.tokens_for(token, sender.address)
    p.s.call(sender, token, C.erc20_transfer(to, p.token_amount()), gas=100_000, hot=hot,
             label=label, access=((token, (C.erc20_balance_slot(sender.address),
                                           C.erc20_balance_slot(to))),))


def _erc20_transfer_from(p: Plan, token: bytes, spender: Account, owner: bytes, to: bytes,
                         hot: bool) -> None:
    p.tokens_for(token, owner)
    infinite = p.rng.random() < 0.3
    p.approve_once(token, owner, spender.address, C.MAX_UINT256 if infinite else 10**30)
    p.s.call(spender, token, C.erc20_transfer_from(owner, to, p.token_amount()),
             gas=130_000, hot=hot, label="erc20.transferFrom",
             access=((token, (C.erc20_allowance_slot(owner, spender.address),
                              C.erc20_balance_slot(owner), C.erc20_balance_slot(to))),))


def _erc20_approve(p: Plan, token: bytes, owner: Account, spender: bytes) -> None:
    p.s.call(owner, token, C.erc20_approve(spender, p.token_amount()), gas=80_000,
             label="erc20.approve",
             access=((token, (C.erc20_allowance_slot(owner.address, spender),)),))


# -- amm helpers -----------------------------------------------------------------
@dataclass
class _Pool:
    address: bytes
    token0: bytes
    token1: bytes
    reserve0: int
    reserve1: int
    founder: bytes


def _make_pool(p: Plan, tokens: Sequence[bytes], index: int) -> _Pool:
    pairs = [(a, b) for a in range(len(tokens)) for b in range(a + 1, len(tokens))]
    a, b = pairs[index % len(pairs)]
    reserve0 = p.rng.randrange(5 * 10**23, 2 * 10**24)
    reserve1 = p.rng.randrange(5 * 10**23, 2 * 10**24)
    founder = p.s.named_address("founder", index)
    address = p.s.deploy_pair(tokens[a], tokens[b], reserve0, reserve1, founder,
                              address=p.s.named_address("pair", index))
    return _Pool(address, tokens[a], tokens[b], reserve0, reserve1, founder)


def _amm_op(p: Plan, pool: _Pool, hot: bool, weights: tuple[int, int, int] = (85, 10, 5)
            ) -> None:
    user = p.s.account()
    op = p.rng.choices(("swap", "add", "remove"), weights=weights)[0]
    for token in (pool.token0, pool.token1):
        p.tokens_for(token, user.address)
        p.approve_once(token, user.address, pool.address, C.MAX_UINT256)
    access = ((pool.address, (C.PAIR_RESERVE0, C.PAIR_RESERVE1)),
              (pool.token0, (C.erc20_balance_slot(user.address),
                             C.erc20_balance_slot(pool.address))),
              (pool.token1, (C.erc20_balance_slot(user.address),
                             C.erc20_balance_slot(pool.address))))
    if op == "swap":
        zero_for_one = p.rng.random() < 0.5
        reserve = pool.reserve0 if zero_for_one else pool.reserve1
        amount = reserve * p.rng.randrange(1, 30) // 10_000
        p.s.call(user, pool.address, C.amm_swap(zero_for_one, amount, 0), gas=250_000,
                 hot=hot, label="amm.swap", access=access)
    elif op == "add":
        per_mille = p.rng.randrange(1, 4)
        p.s.call(user, pool.address,
                 C.amm_add_liquidity(pool.reserve0 * per_mille // 1000,
                                     pool.reserve1 * per_mille // 1000),
                 gas=300_000, hot=hot, label="amm.addLiquidity", access=access)
    else:
        supply = math.isqrt(pool.reserve0 * pool.reserve1)
        shares = supply * p.rng.randrange(1, 4) // 1000
        p.s.pair_give_shares(pool.address, pool.founder, user.address, shares)
        p.s.call(user, pool.address, C.amm_remove_liquidity(shares), gas=250_000, hot=hot,
                 label="amm.removeLiquidity", access=access)


# -- factory helpers -------------------------------------------------------------
def _factory_call(p: Plan, factory: bytes, op: str, hot: bool) -> None:
    sender = p.s.account()
    value = p.rng.choice((0, 0, 10**15, 10**16))
    access = ((factory, ()),)
    if op == "create":
        p.s.call(sender, factory, C.factory_create(), value=value, gas=200_000, hot=hot,
                 label="factory.create", access=access)
    elif op == "create2":
        p.s.call(sender, factory, C.factory_create2(p.salt()), value=value, gas=220_000,
                 hot=hot, label="factory.create2", access=access)
    else:
        beneficiary = p.recipient(fresh_share=0.5)
        p.s.call(sender, factory, C.factory_create_and_destroy(p.salt(), beneficiary),
                 value=value, gas=260_000, hot=hot, label="factory.createAndDestroy",
                 access=access)


def _child_op(p: Plan, op: str, child_index: int) -> None:
    sender = p.s.account()
    if op == "kill":
        child = p.s.deploy_child(sender.address, balance=10**15 * p.rng.randrange(1, 10),
                                 index=child_index)
        beneficiary = p.recipient(fresh_share=0.5)
        p.s.call(sender, child, C.child_kill(beneficiary), gas=80_000, label="child.kill",
                 access=((child, (C.CHILD_OWNER,)),))
    else:
        owner = p.s.named_address("child owner", child_index)
        child = p.s.deploy_child(owner, index=child_index)
        p.s.call(sender, child, C.child_ping(), gas=60_000, label="child.ping",
                 access=((child, (C.CHILD_PINGS,)),))


def _creation_tx(p: Plan) -> None:
    p.s.call(p.s.account(), None, C.bytecode("child_init"), gas=200_000,
             label="create-transaction")


# -- workloads ---------------------------------------------------------------------
def plan_transfers(p: Plan) -> None:
    hot_sender = p.s.account() if p.hot else None
    for i in range(p.o.txs):
        hot = i in p.hot
        sender = hot_sender if hot else p.s.account()
        assert sender is not None
        to = p.recipient(fresh_share=1 / 3)
        p.s.call(sender, to, value=p.rng.randrange(1, ETHER), gas=21_000, hot=hot,
                 label="transfer")


def plan_withdrawals(p: Plan) -> None:
    hot_wallet = p.s.account()
    for i in range(p.o.txs):
        if i in p.hot:
            p.s.call(hot_wallet, p.s.fresh_address(), value=p.rng.randrange(1, ETHER),
                     gas=21_000, hot=True, label="withdrawal")
        else:
            p.s.call(p.s.account(), hot_wallet.address,
                     value=p.rng.randrange(1, ETHER), gas=21_000, label="deposit")


def plan_erc20(p: Plan) -> None:
    token = p.s.deploy_erc20()
    hot_recipient = p.s.account().address if p.hot else b""
    for i in range(p.o.txs):
        hot = i in p.hot
        if hot:
            op = p.rng.choices(("transfer", "transferFrom"), weights=(85, 15))[0]
        else:
            op = p.rng.choices(("transfer", "approve", "transferFrom"),
                               weights=(80, 10, 10))[0]
        if op == "transfer":
            sender = p.s.account()
            to = hot_recipient if hot else p.recipient()
            _erc20_transfer(p, token, sender, to, hot)
        elif op == "approve":
            _erc20_approve(p, token, p.s.account(), p.s.account().address)
        else:
            spender = p.s.account()
            owner = p.s.account().address
            to = hot_recipient if hot else p.recipient()
            _erc20_transfer_from(p, token, spender, owner, to, hot)


def plan_amm(p: Plan) -> None:
    tokens = [p.s.deploy_erc20() for _ in range(4)]
    pools: dict[int, _Pool] = {}

    def pool(index: int) -> _Pool:
        if index not in pools:
            pools[index] = _make_pool(p, tokens, index)
        return pools[index]

    pool(0)
    cold = 0
    for i in range(p.o.txs):
        if i in p.hot:
            _amm_op(p, pool(0), hot=True)
            continue
        if p.o.pools is None:
            index = 1 + cold
        elif p.o.pools == 1:
            index = 0
        else:
            index = 1 + cold % (p.o.pools - 1)
        cold += 1
        _amm_op(p, pool(index), hot=False)


def plan_hotspot(p: Plan) -> None:
    counter = p.s.deploy_simple("hotspot")
    for i in range(p.o.txs):
        sender = p.s.account()
        if i in p.hot:
            p.s.call(sender, counter, C.hotspot_increment(), gas=80_000, hot=True,
                     label="hotspot.increment", access=((counter, (C.HOTSPOT_COUNTER,)),))
        else:
            p.s.call(sender, counter, C.hotspot_increment_mine(), gas=80_000,
                     label="hotspot.incrementMine",
                     access=((counter, (C.hotspot_counter_of_slot(sender.address),)),))


def plan_storage(p: Plan) -> None:
    store = p.s.deploy_simple("storage")
    slots = p.o.slots
    for i in range(p.o.txs):
        sender = p.s.account()
        hot = i in p.hot
        key = bytes(32) if hot else sender.address.rjust(32, b"\0")
        p.s.call(sender, store, C.storage_fill(key, slots), gas=60_000 + 25_000 * slots,
                 hot=hot, label="storage.fill",
                 access=((store, (C.storage_nonce_slot(key),)),))


#: hash rounds per compute call (16 instructions, about 100 gas each): interpreter
#: work dominates a call, as in contract-heavy mainnet transactions
COMPUTE_ROUNDS = 100


def plan_compute(p: Plan) -> None:
    contract = p.s.deploy_simple("compute")
    gas = 60_000 + 150 * COMPUTE_ROUNDS
    for i in range(p.o.txs):
        sender = p.s.account()
        if i in p.hot:
            p.s.call(sender, contract, C.compute_work_shared(COMPUTE_ROUNDS), gas=gas,
                     hot=True, label="compute.workShared",
                     access=((contract, (C.COMPUTE_SHARED,)),))
        else:
            p.s.call(sender, contract, C.compute_work(COMPUTE_ROUNDS), gas=gas,
                     label="compute.work",
                     access=((contract, (C.compute_result_of_slot(sender.address),)),))


def plan_factory(p: Plan) -> None:
    shared = p.s.deploy_simple("factory", 0)
    factories = 0
    children = 0
    for i in range(p.o.txs):
        if i in p.hot:
            op = p.rng.choices(("create", "create2", "destroy"), weights=(35, 35, 30))[0]
            _factory_call(p, shared, op, hot=True)
            continue
        op = p.rng.choices(("create", "create2", "destroy", "kill", "ping", "tx"),
                           weights=(20, 20, 20, 15, 10, 15))[0]
        if op in ("create", "create2", "destroy"):
            factories += 1
            _factory_call(p, p.s.deploy_simple("factory", factories), op, hot=False)
        elif op in ("kill", "ping"):
            _child_op(p, op, children)
            children += 1
        else:
            _creation_tx(p)


def plan_mixed(p: Plan) -> None:
    s = p.s
    tokens = [s.deploy_erc20() for _ in range(4)]
    counter = s.deploy_simple("hotspot")
    store = s.deploy_simple("storage")
    hot_pool_count = p.o.pools or DEFAULT_MIXED_POOLS
    hot_pools = [_make_pool(p, tokens, index) for index in range(hot_pool_count)]
    pool_weights = [1 / (rank + 1) for rank in range(hot_pool_count)]
    exchange = s.account()
    bots = [s.account() for _ in range(3)]
    private_pools = factories = children = 0
    cold_ops = ("eth", "erc20", "swap", "approve", "transferFrom", "store", "counter",
                "factory", "tx", "revert", "kill")
    cold_weights = (35, 30, 8, 5, 5, 4, 4, 3, 2, 2, 2)
    hot_ops = ("swap", "to-exchange", "bot", "counter", "store", "eth-to-exchange")
    hot_weights = (35, 25, 20, 10, 5, 5)
    for i in range(p.o.txs):
        hot = i in p.hot
        token = tokens[min(3, int(p.rng.paretovariate(1.5)) - 1)]
        if hot:
            op = p.rng.choices(hot_ops, weights=hot_weights)[0]
            if op == "swap":
                _amm_op(p, p.rng.choices(hot_pools, weights=pool_weights)[0], hot=True,
                        weights=(90, 7, 3))
            elif op == "to-exchange":
                _erc20_transfer(p, token, s.account(), exchange.address, hot=True)
            elif op == "bot":
                bot = p.rng.choice(bots)
                if p.rng.random() < 0.5:
                    s.call(bot, p.recipient(), value=p.rng.randrange(1, ETHER // 10),
                           gas=21_000, hot=True, label="bot.transfer")
                else:
                    _erc20_transfer(p, token, bot, p.recipient(), hot=True,
                                    label="bot.erc20.transfer")
            elif op == "counter":
                s.call(s.account(), counter, C.hotspot_increment(), gas=80_000, hot=True,
                       label="hotspot.increment")
            elif op == "store":
                s.call(s.account(), store, C.storage_fill(bytes(32), 4), gas=170_000,
                       hot=True, label="storage.fill")
            else:
                s.call(s.account(), exchange.address, value=p.rng.randrange(1, ETHER),
                       gas=21_000, hot=True, label="transfer.to-exchange")
            continue
        op = p.rng.choices(cold_ops, weights=cold_weights)[0]
        if op == "eth":
            s.call(s.account(), p.recipient(), value=p.rng.randrange(1, ETHER), gas=21_000,
                   label="transfer")
        elif op == "erc20":
            _erc20_transfer(p, token, s.account(), p.recipient(), hot=False)
        elif op == "swap":
            private_pools += 1
            _amm_op(p, _make_pool(p, tokens, hot_pool_count + private_pools), hot=False,
                    weights=(90, 7, 3))
        elif op == "approve":
            _erc20_approve(p, token, s.account(), s.account().address)
        elif op == "transferFrom":
            _erc20_transfer_from(p, token, s.account(), s.account().address,
                                 p.recipient(), hot=False)
        elif op == "store":
            sender = s.account()
            s.call(sender, store, C.storage_fill(sender.address.rjust(32, b"\0"), 4),
                   gas=170_000, label="storage.fill")
        elif op == "counter":
            s.call(s.account(), counter, C.hotspot_increment_mine(), gas=80_000,
                   label="hotspot.incrementMine")
        elif op == "factory":
            factories += 1
            _factory_call(p, s.deploy_simple("factory", factories),
                          p.rng.choice(("create", "create2", "destroy")), hot=False)
        elif op == "tx":
            _creation_tx(p)
        elif op == "revert":
            # A sender without tokens: the transfer reverts (status 0).
            sender = s.account()
            s.call(sender, token, C.erc20_transfer(p.recipient(), p.token_amount()),
                   gas=100_000, expect_success=False, label="erc20.transfer (reverts)")
        else:
            _child_op(p, "kill", children)
            children += 1
    if s.has(ShanghaiVM):
        for index in range(16):
            address = s.fresh_address() if index < 12 else s.account().address
            s.withdraw(100_000 + index, address, p.rng.randrange(10**7, 3 * 10**7))

