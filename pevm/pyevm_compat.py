"""Every place pevm reaches into py-evm's internals, with why.

py-evm 0.12.1b1 is pinned exactly: its public API does not expose what a parallel
executor and a block observer need (the account database behind a ``State``, the
single method every account-field write goes through, the journal and trie layers a
flat pre-state reader skips), nor a way to observe what a state reads and writes. Each
such use lives here, named for what it gives, so that an upgrade of py-evm is checked
in one file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any, cast

import eth_utils
from eth.abc import StateAPI, VirtualMachineAPI
from eth.db.chain import ChainDB
from eth.db.trie import _make_trie_root_and_nodes


def account_db(state: StateAPI) -> Any:
    """The ``AccountDB`` a py-evm ``State`` owns (``State._account_db``): the
    engine reads the block's pre-state from it and writes the merged result into
    it; observers wrap its write methods."""
    return state._account_db  # type: ignore[attr-defined]


#: ``(address, balance or None, nonce or None, delta)``: one account update
AccountUpdater = Callable[[bytes, "int | None", "int | None", int], None]


def account_updater(state: StateAPI) -> AccountUpdater | None:
    """A function that sets an account's balance (None: keeps it), adds a delta to
    it and sets its nonce (None: keeps it) in one account update, or None where the
    state's database offers no such path.

    Why: the engine's merge writes a balance and a nonce per account it changed,
    where py-evm's public ``set_balance`` then ``set_nonce`` would each read, copy,
    encode and journal the account. On py-evm's ``AccountDB`` this goes through its
    whole-record methods (``_get_account``, ``_set_account``); pevm's flat database
    has the update as a method of its own (``update_account``).
    """
    db = getattr(state, "_account_db", None)
    update = getattr(db, "update_account", None)
    if update is not None:
        return cast(AccountUpdater, update)
    get = getattr(db, "_get_account", None)
    put = getattr(db, "_set_account", None)
    if get is None or put is None:
        return None

    def update_record(address: bytes, balance: int | None, nonce: int | None,
                      delta: int = 0) -> None:
        account = get(address)
        put(address, account.copy(
            balance=(account.balance if balance is None else balance) + delta,
            nonce=account.nonce if nonce is None else nonce))
    return update_record


# -- observing what a state reads and writes ------------------------------------------
# py-evm has no callback API for state access. The pipeline (which accounts and slots a
# block wrote), the recording engine (each transaction's reads and writes) and the
# workload generator (what the block it mines wrote) all observe through
# observe_state; patch_methods is the one way pevm replaces a py-evm method.

#: What replaces a method: called with the method it replaces, returns the new one.
Patch = Callable[[Callable[..., Any]], Callable[..., Any]]


def patch_methods(obj: Any, patches: Mapping[str, Patch]) -> Callable[[], None]:
    """Replace methods of one py-evm object with ``patch(original)``; returns the undo.

    Why: pevm's hooks into py-evm (the engine swapped into ``import_block``, a hook on
    every applied transaction, the observers below) have no API to register with, so
    they replace bound methods -- on the instance only, so that other VMs and states
    are untouched. The undo puts back exactly what was there (an earlier patch or the
    class's method), so patches stack and unwind in reverse order.
    """
    saved: list[tuple[str, bool, Any]] = []
    for name, patch in patches.items():
        own = vars(obj)
        saved.append((name, name in own, own.get(name)))
        setattr(obj, name, patch(getattr(obj, name)))

    def undo() -> None:
        own = vars(obj)
        for name, had_own, previous in reversed(saved):
            if had_own:
                setattr(obj, name, previous)
            else:
                own.pop(name, None)
    return undo


class Field(Enum):
    """What an observed call reads or writes (see :class:`StateObserver`).

    Why: py-evm's methods, not pevm's locations: which of them a user counts, and as
    what (the recording engine: a deletion writes balance, nonce, code and storage),
    is the user's business.
    """

    #: the balance (``get_balance``, ``set_balance``; ``State.delta_balance`` has its
    #: own callback)
    BALANCE = "balance"
    #: the nonce (``get_nonce``, ``set_nonce``; ``increment_nonce`` reads and writes)
    NONCE = "nonce"
    #: the code or its hash (``get_code``, ``get_code_hash``, ``set_code``,
    #: ``delete_code``)
    CODE = "code"
    #: one storage slot, the callback's ``slot`` (``get_storage``, ``set_storage``)
    SLOT = "slot"
    #: read only: whether the account is in the state trie (``account_exists``)
    EXISTS = "exists"
    #: read only: EIP-161 emptiness (``account_is_empty``; ``account_has_code_or_nonce``
    #: reads NONCE and CODE)
    EMPTY = "empty"
    #: write only: all the account's storage is wiped (``delete_storage``)
    WIPE = "wipe"
    #: write only: the account and its storage are deleted (``delete_account``)
    DELETE = "delete"
    #: write only: the account is written back unchanged -- which puts an empty
    #: account in the trie where there was none (``touch_account``)
    TOUCH = "touch"
    #: write only: a whole account record written straight through
    #: ``AccountDB._set_account`` (or pevm's flat ``update_account``) -- any of
    #: balance, nonce, code hash and storage root:
    #: py-evm's storage-root updates, pevm's merge (:func:`account_updater`)
    RECORD = "record"


class StateObserver:
    """Told what one py-evm state reads and writes (:func:`observe_state`).

    Why: py-evm has no observer API; this is the one pevm gives its own observers
    (the pipeline's state diff, the recording engine, the workload generator).

    Each call is reported once, before it runs, with what it is about. Only the
    outermost call is reported: py-evm's methods call one another (``set_balance``
    writes through ``_set_account``, ``delta_balance`` reads then sets the balance),
    and what runs inside a reported call is part of it -- so are the observer's own
    looks at the state from inside a callback. The defaults ignore everything.
    """

    def read(self, address: bytes, what: Field, slot: int | None) -> None:
        """``address``'s ``what`` (``slot`` for :attr:`Field.SLOT`) is about to be read."""

    def write(self, address: bytes, what: Field, slot: int | None) -> None:
        """``address``'s ``what`` (``slot`` for :attr:`Field.SLOT`) is about to be
        written."""

    def balance_delta(self, address: bytes, delta: int) -> None:
        """``State.delta_balance(address, delta)`` is about to run: by default a read
        and a write of the balance, which is what it does."""
        self.read(address, Field.BALANCE, None)
        self.write(address, Field.BALANCE, None)


@dataclasses.dataclass
class WriteLog(StateObserver):
    """Every account a state wrote, the storage slots it wrote, and the accounts whose
    storage it wiped (deleted accounts included).

    Why: what both the pipeline's state diff and the generator's post-state must look
    at -- py-evm's witness lists what a state read, not all it wrote.
    """

    accounts: set[bytes] = dataclasses.field(default_factory=set)
    slots: dict[bytes, set[int]] = dataclasses.field(default_factory=dict)
    wiped: set[bytes] = dataclasses.field(default_factory=set)

    def write(self, address: bytes, what: Field, slot: int | None) -> None:
        address = bytes(address)
        self.accounts.add(address)
        if what is Field.SLOT:
            assert slot is not None
            self.slots.setdefault(address, set()).add(slot)
        elif what is Field.WIPE or what is Field.DELETE:
            self.wiped.add(address)


#: ``AccountDB`` method -> (what it reads, what it writes), reported in that order.
_ACCOUNT_DB_CALLS: dict[str, tuple[tuple[Field, ...], tuple[Field, ...]]] = {
    "get_balance": ((Field.BALANCE,), ()),
    "get_nonce": ((Field.NONCE,), ()),
    "get_code": ((Field.CODE,), ()),
    "get_code_hash": ((Field.CODE,), ()),
    "get_storage": ((Field.SLOT,), ()),
    "account_exists": ((Field.EXISTS,), ()),
    "account_is_empty": ((Field.EMPTY,), ()),
    "account_has_code_or_nonce": ((Field.NONCE, Field.CODE), ()),
    "set_balance": ((), (Field.BALANCE,)),
    "set_nonce": ((), (Field.NONCE,)),
    "increment_nonce": ((Field.NONCE,), (Field.NONCE,)),
    "set_code": ((), (Field.CODE,)),
    "delete_code": ((), (Field.CODE,)),
    "set_storage": ((), (Field.SLOT,)),
    "delete_storage": ((), (Field.WIPE,)),
    "delete_account": ((), (Field.DELETE,)),
    "touch_account": ((), (Field.TOUCH,)),
    # private: the one method every account-field change goes through, so that a
    # write by any path -- not only the public methods above -- is seen
    "_set_account": ((), (Field.RECORD,)),
    # pevm's flat database: balance and nonce in one update (account_updater)
    "update_account": ((), (Field.RECORD,)),
}


def _reporter(observer: StateObserver, reads: tuple[Field, ...],
              writes: tuple[Field, ...]) -> Callable[..., None]:
    """Reports an ``AccountDB`` call, given its arguments: ``reads`` then ``writes``."""
    slotted = Field.SLOT in reads or Field.SLOT in writes

    def report(address: bytes, *args: Any, **kwargs: Any) -> None:
        slot = (args[0] if args else kwargs["slot"]) if slotted else None
        for what in reads:
            observer.read(address, what, slot)
        for what in writes:
            observer.write(address, what, slot)
    return report


class Observation:
    """An observer installed on one state (:func:`observe_state`)."""

    def __init__(self, state: StateAPI, observer: StateObserver) -> None:
        #: > 0 while a reported call runs (or in :meth:`quiet`): nothing is reported
        self._depth = 0
        reads_wanted = type(observer).read is not StateObserver.read
        db = account_db(state)
        self._undo = [
            # hasattr: another account database (pevm's flat one) has no
            # _set_account; its public methods are every way in
            patch_methods(db, {
                name: self._reported(_reporter(observer, reads, writes))
                for name, (reads, writes) in _ACCOUNT_DB_CALLS.items()
                if (writes or reads_wanted) and hasattr(db, name)}),
            patch_methods(state, {"delta_balance": self._reported(observer.balance_delta)}),
        ]

    def _reported(self, report: Callable[..., None]) -> Patch:
        """A patch that calls ``report`` with the method's arguments before the
        method, unless the call is nested in a reported one (or quiet)."""
        def patch(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                if self._depth:
                    return original(*args, **kwargs)
                self._depth += 1
                try:
                    report(*args, **kwargs)
                    return original(*args, **kwargs)
                finally:
                    self._depth -= 1
            return call
        return patch

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """The state's reads and writes in this block are not reported (the
        observer's own looks at the state from outside a callback)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def close(self) -> None:
        """Stop observing: put the state's methods back as they were."""
        while self._undo:
            self._undo.pop()()


def observe_state(state: StateAPI, observer: StateObserver) -> Observation:
    """Report what ``state`` reads and writes to ``observer`` (see
    :class:`StateObserver`) until the returned observation is closed.

    Why: py-evm has no hook for state access. This patches, on this state and its
    ``AccountDB`` only, every public method that reads or writes an account,
    ``AccountDB._set_account`` (see :class:`Field`) and ``State.delta_balance`` (so
    that a balance change is seen as one, with its sign). Read-only methods are
    patched only for an observer that overrides :meth:`StateObserver.read`: a
    write-only observer (the pipeline's, around the engine) costs reads nothing.
    """
    return Observation(state, observer)


def observed_vm_class(vm_class: type[VirtualMachineAPI],
                      observer: StateObserver) -> type[VirtualMachineAPI]:
    """A subclass of ``vm_class`` each state of which ``observer`` observes
    (:func:`observe_state`) from the moment it is built, for good.

    Why: a VM builds states in several places -- ``build_state`` (the genesis state,
    ``VM.state``), ``import_block`` (straight from the state class), costless
    states -- all from the class in ``VM._state_class``, which this replaces with a
    subclass that observes each instance.
    """
    state_class = vm_class.get_state_class()

    def __init__(self: StateAPI, *args: Any, **kwargs: Any) -> None:
        state_class.__init__(self, *args, **kwargs)
        observe_state(self, observer)

    observed_state = type(f"Observed{state_class.__name__}", (state_class,),
                          {"__init__": __init__})
    return type(f"Observed{vm_class.__name__}", (vm_class,),
                {"_state_class": observed_state})


# -- reading an AccountDB's state beneath its journal (pevm.engines.pre_state) ------
try:  # py-evm's journal markers for "deleted here" (read-only)
    from eth.db.journal import DELETE_WRAPPED, REVERT_TO_WRAPPED
    _DELETED: tuple[Any, ...] = (DELETE_WRAPPED, REVERT_TO_WRAPPED)
except ImportError:  # pragma: no cover - another py-evm layout: no fast path
    _DELETED = ()

#: :func:`pending_account`'s answer for an account the journal deleted
DELETED = b""


def stored_tries(db: Any) -> tuple[Any, Any] | None:
    """``(account trie's node store, storage node store)`` of an ``AccountDB`` --
    what a reader needs to walk the persisted tries itself (py-evm's own trie
    decodes every node of every path again) -- or None for any other account
    database (then readers use the public API)."""
    fast = bool(_DELETED) and all(
        hasattr(db, name) for name in
        ("_journaltrie", "_batchtrie", "_raw_store_db", "_account_stores", "state_root")
    ) and hasattr(db._journaltrie, "_journal")
    return (db._batchtrie, db._raw_store_db) if fast else None


def pending_account(db: Any, address: bytes) -> bytes | None:
    """The account's RLP as ``AccountDB``'s journal holds it (:data:`DELETED` when
    the journal deleted it), or None when the journal has no entry (the persisted
    trie holds the account). Only for an ``AccountDB`` :func:`stored_tries` accepts."""
    pending = db._journaltrie._journal[address]
    if pending is None:
        return None
    return DELETED if pending in _DELETED else pending


def encoded_account(db: Any, address: bytes) -> bytes:
    """The account's RLP through ``AccountDB``'s own lookup (journal, then trie)."""
    return db._get_encoded_account(address, from_journal=True)


def storage_opened(db: Any, address: bytes) -> bool:
    """Whether ``AccountDB`` has opened the account's storage store (written,
    wiped, or read it): such storage has its own journal and maybe unsaved nodes."""
    return address in db._account_stores


def remember_account(db: Any, address: bytes, account: Any) -> None:
    """Put a decoded account where ``AccountDB._get_account`` caches it (and mark
    it accessed, as that lookup would): a later write through py-evm's AccountDB
    then needs no trie lookup."""
    cache = getattr(db, "_account_cache", None)
    if cache is not None and address not in cache:
        cache[address] = account
        accessed = getattr(db, "_accessed_accounts", None)
        if accessed is not None:
            accessed.add(address)


def code_by_hash(db: Any, digest: bytes) -> bytes:
    """Contract code by its hash from ``AccountDB``'s journaled database (raises
    KeyError or AttributeError where that is not possible)."""
    return db._journaldb[digest]


# -- transactions: a sender recovered once ------------------------------------------
def _signature_checked() -> None:
    """Stands in for ``check_signature_validity`` once the signature was checked."""


def pin_sender(tx: Any, sender: bytes) -> None:
    """Make py-evm use ``sender`` for ``tx`` and skip re-checking its signature.

    py-evm recovers the public key on every execution (``sender`` is a cached
    property of the transaction object, ``validate`` re-checks the signature); the
    engine recovers and checks it once (:func:`pevm.engines.senders.recover_sender`)
    and fills the cached property -- on the typed transaction's wrapped ``_inner``
    object too -- replacing the re-check on that object only.
    """
    for obj in (tx, getattr(tx, "_inner", None)):
        if obj is None:
            continue
        obj.__dict__["sender"] = sender
        obj.__dict__["check_signature_validity"] = _signature_checked


def pinned_sender(tx: Any) -> bytes | None:
    """The sender :func:`pin_sender` gave ``tx``, or None."""
    own = tx.__dict__
    if own.get("check_signature_validity") is _signature_checked:
        return own.get("sender")
    return None


def state_class_on_account_db(state_class: type, name: str,
                               namespace: dict[str, Any]) -> type:
    """A subclass of a fork's ``State`` whose instances run on a given account
    database: ``cls(account_db, execution_context, db=None)``.

    Why: py-evm's ``State(db, execution_context, state_root)`` builds its own
    ``AccountDB`` over a trie; the parallel engine runs the fork's State -- its
    transaction validation, executor and interpreter, unchanged -- on its flat
    versioned view instead, so the constructor sets State's private ``_db`` and
    ``_account_db`` itself. ``namespace`` adds or overrides methods.

    The class also holds its ``logger`` once: py-evm's ``State.logger`` is a
    property that looks the logger up by name (``eth.vm.state.<class name>``) on
    every use -- twice per transaction, about 6% of a plain transfer's time in the
    engine. The attribute is that same logger object, so its level and handlers
    are still whatever logging is configured with.
    """
    def __init__(self: Any, view: Any, execution_context: Any, db: Any = None) -> None:
        self._db = db
        self.execution_context = execution_context
        self._account_db = view

    logger = eth_utils.get_extended_debug_logger(f"eth.vm.state.{name}")
    return type(name, (state_class,),
                {"__init__": __init__, "logger": logger, **namespace})


_ENCODE_HEX: Callable[[Any], str] = eth_utils.encode_hex


def _hex(value: Any) -> str:
    """``eth_utils.encode_hex``, exactly, with a short path for ``bytes``."""
    if type(value) is bytes:
        return "0x" + value.hex()
    return _ENCODE_HEX(value)


#: the ``eth.*`` modules that imported ``encode_hex``, as of ``sys.modules`` at
#: the size it had then (scanning it each block cost ~0.2 ms)
_HEX_USERS: tuple[int, list[Any]] = (0, [])


def _hex_users() -> list[Any]:
    global _HEX_USERS
    if _HEX_USERS[0] != len(sys.modules):
        _HEX_USERS = (len(sys.modules), [
            module for name, module in list(sys.modules.items())
            if name.startswith("eth.") and hasattr(module, "encode_hex")])
    return _HEX_USERS[1]


@contextlib.contextmanager
def quick_debug_messages() -> Iterator[None]:
    """Within the block, py-evm's modules format hex with :func:`_hex`.

    Why: py-evm builds its ``debug2`` log messages whether or not they are logged
    -- f-strings evaluated before the call: per transaction the sender, recipient,
    code, the coinbase and more through ``eth_utils.encode_hex``, whose type checks
    and prefix test are about 4% of a plain transfer's time in the engine. The
    replacement returns the same strings (``0x`` and lower-case hex digits); it is
    swapped into the ``eth.*`` modules that imported ``encode_hex`` while the
    engine runs a block (and in its workers, forked then), and put back after.
    """
    modules = [module for module in _hex_users()
               if getattr(module, "encode_hex", None) is _ENCODE_HEX]
    for module in modules:
        module.encode_hex = _hex
    try:
        yield
    finally:
        for module in modules:
            module.encode_hex = _ENCODE_HEX


def replace_precompiles(computation_class: type,
                        replacement_for: Callable[[Callable[..., Any]], Callable[..., Any] | None]
                        ) -> type:
    """A subclass of ``computation_class`` whose precompiles are
    ``replacement_for(function)`` where that is not None (the class itself when
    nothing is replaced).

    Why: py-evm keeps a fork's precompiles in the computation class's private
    ``_precompiles`` mapping (address -> function, some of them ``toolz.curry``
    objects that bind the fork's gas prices), its only registry.
    """
    precompiles = dict(getattr(computation_class, "_precompiles", {}))
    replaced = {address: new for address, function in precompiles.items()
                if (new := replacement_for(function)) is not None}
    if not replaced:
        return computation_class
    precompiles.update(replaced)
    return type(computation_class.__name__, (computation_class,),
                {"_precompiles": precompiles})


def output_or_original(computation: Any, cost: int, reason: str,
                       output: Callable[[], bytes | None],
                       original: Callable[[Any], Any]) -> Any:
    """A precompile that computes ``output()`` faster than py-evm but is py-evm's
    otherwise: where the gas covers py-evm's ``cost`` and ``output()`` gives bytes,
    charge the cost (``reason`` as py-evm words it) and set them; else run py-evm's
    ``original`` unchanged, so that every error, and the gas it burns, is py-evm's.

    Why here: py-evm's precompile protocol (a function of the computation that
    charges gas and sets ``output``, an exception for a refusal) is the host's.
    """
    if computation.get_gas_remaining() >= cost:  # else py-evm raises its out-of-gas
        result = output()
        if result is not None:
            computation.consume_gas(cost, reason=reason)
            computation.output = result
            return computation
    return run_original(computation, original)


def run_original(computation: Any, original: Callable[[Any], Any]) -> Any:
    """Run py-evm's own precompile function ``original`` on ``computation`` and
    return the computation, as py-evm's precompile protocol does (its BLS12-381
    functions return None; an error they raise goes through unchanged)."""
    original(computation)
    return computation


#: The opcodes that read the running contract's balance before a new frame starts:
#: CALL, CALLCODE, CREATE and CREATE2 only compare it with the value they send;
#: DELEGATECALL and STATICCALL read it and drop it.
VALUE_CHECK_OPCODES = (0xF0, 0xF1, 0xF2, 0xF4, 0xF5, 0xFA)

_WINDOWED: dict[type, type] = {}


def with_value_check_windows(computation_class: type) -> type:
    """A subclass of ``computation_class`` whose call and create opcodes
    (:data:`VALUE_CHECK_OPCODES`) tell their state whose balance they are about to
    check: ``state.value_check(address)`` as they start, ``state.value_check(None)``
    when they are done. The state's class must define ``value_check``.

    Why: from the opcode's balance read to the new frame's first ``touch_account``,
    py-evm only *compares* the contract's balance with the value (in the opcode,
    then again in ``apply_message``) and debits it -- but reports each as a plain
    ``get_balance``. The window lets the parallel engine and the dependency
    recorder treat those as "can it pay?" (a lazy debit), as they treat a
    transaction's own sender. py-evm keeps the opcodes in the computation class's
    ``opcodes`` mapping (number -> callable), its only registry; each entry is
    called as ``opcode(computation=...)``.
    """
    cached = _WINDOWED.get(computation_class)
    if cached is not None:
        return cached
    opcodes = dict(computation_class.opcodes)  # type: ignore[attr-defined]
    for number in VALUE_CHECK_OPCODES:
        if number in opcodes:
            opcodes[number] = _windowed(opcodes[number])
    cached = _WINDOWED[computation_class] = type(
        computation_class.__name__, (computation_class,), {"opcodes": opcodes})
    return cached


def report_value_checks(state: StateAPI, report: Callable[[bytes | None], None]
                        ) -> Callable[[], None]:
    """Run ``state``'s computations with :func:`with_value_check_windows`, telling
    ``report`` each window; returns the undo. For py-evm's own ``State`` (the
    recording engine's), on this instance only."""
    windowed = with_value_check_windows(state.computation_class)
    undo = patch_methods(state, {"computation_class": lambda _: windowed})
    vars(state)["value_check"] = report

    def undo_all() -> None:
        vars(state).pop("value_check", None)
        undo()
    return undo_all


def _windowed(opcode: Callable[..., Any]) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        state = computation.state
        state.value_check(computation.msg.storage_address)
        try:
            opcode(computation=computation)
        finally:
            state.value_check(None)
    run.mnemonic = getattr(opcode, "mnemonic", "?")  # type: ignore[attr-defined]
    run.__wrapped__ = opcode  # type: ignore[attr-defined]
    return run


def state_database(state: StateAPI) -> Any:
    """The database a py-evm ``State`` was built on (``State._db``): the engine
    builds the fork's own State class on its flat view with the same database, so
    that what py-evm reads from it directly (code by hash, block hashes) resolves."""
    return getattr(state, "_db", None)


# -- the chain database -------------------------------------------------------------
#: Block bodies a :class:`ChainDBOwnCaches` keeps decoded (py-evm's lru_cache size).
BODY_CACHE_SIZE = 32


class ChainDBOwnCaches(ChainDB):
    """py-evm's ``ChainDB`` whose decoded-body caches belong to the instance.

    Why: py-evm memoises ``_get_block_transactions`` and ``_get_block_withdrawals``
    with ``functools.lru_cache`` on the methods themselves, so each cache key holds
    ``self`` and the *class* keeps the last 32 chain databases alive -- each with its
    whole database and state. A process that imports many blocks on fresh chains
    (``pevm bench`` or ``pevm run`` over a corpus, a client importing test cases)
    grew by ~30 MB a mainnet block: eight mainnet blocks took it from 79 to 283 MB
    (126 MB with this class). Here each chain database keeps its own
    :data:`BODY_CACHE_SIZE` entries, which go with it; the lookups and the decoded
    objects are py-evm's own (the methods' undecorated functions). (The slowdown
    such a heap caused at 2 workers was mostly the other leak across blocks:
    :func:`pevm.engines.parallel.collect_if_grown`.)
    """

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self._bodies: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def _get_block_transactions(  # type: ignore[override]
            self, transaction_root: bytes, transaction_decoder: Any) -> tuple[Any, ...]:
        return self._body(ChainDB._get_block_transactions, transaction_root,
                          transaction_decoder)

    def _get_block_withdrawals(  # type: ignore[override]
            self, withdrawals_root: bytes) -> tuple[Any, ...]:
        return self._body(ChainDB._get_block_withdrawals, withdrawals_root)

    def _body(self, cached: Any, *key: Any) -> tuple[Any, ...]:
        bodies = self._bodies
        entry = (cached, *key)
        found = bodies.pop(entry, None)
        if found is None:
            found = cached.__wrapped__(self, *key)
            if len(bodies) >= BODY_CACHE_SIZE:
                del bodies[next(iter(bodies))]  # the least recently used
        bodies[entry] = found
        return found


def forget_body_tries() -> None:
    """Empty py-evm's cache of ordered-trie roots (``eth.db.trie``'s
    ``_make_trie_root_and_nodes``, an ``lru_cache`` keyed by the encoded items).

    Why: py-evm builds a block's transaction trie twice in one import and counts
    on that cache for the second time; a benchmark round that imports the same
    block again finds the first round's root there and skips the build a chain's
    next block pays (~0.3-0.5 s in ``HexaryTrie`` for 700-1,000 transactions).
    """
    _make_trie_root_and_nodes.cache_clear()


# -- rlp records and py-evm's fixture helpers -----------------------------------------
def field_names(sedes: Any) -> tuple[str, ...]:
    """The field names of an rlp ``Serializable`` class or object (``_meta``: rlp
    keeps them there; py-evm's typed API has no accessor)."""
    return tuple(sedes._meta.field_names)


def header_class_of(block_class: Any) -> Any:
    """The header class of a py-evm block class (the sedes of its first field)."""
    return block_class._meta.fields[0][1]


# py-evm's own normalisation of BlockchainTests JSON, from a private module of its
# test tools: used rather than re-implemented so that fixtures parse exactly as
# py-evm's own fixture tests parse them.
from eth.tools._utils.normalization import (  # noqa: E402
    normalize_account_state as normalize_account_state,
    normalize_blockchain_fixtures as normalize_blockchain_fixtures,
)


# -- Keccak --------------------------------------------------------------------------
def use_fast_keccak() -> str:
    """Make eth-hash's shared ``keccak`` (py-evm's and pevm's) use pysha3's C Keccak.

    Why: eth-hash picks pycryptodome when both are installed, and pycryptodome builds a
    hash object through several Python calls per digest: ~12-14 us a call here against
    ~1.3 us for ``sha3.keccak_256`` (safe-pysha3). py-evm hashes per call -- every
    receipt's bloom is 8 digests per log (twice: ``make_receipt`` and
    ``validate_receipt``), every sender recovery 2, every SHA3 opcode and storage key
    one -- so the backend is a measurable share of an import, and the bloom part of it
    sits on the engine's sequential merge. Digests are identical, so results cannot
    change. An ``ETH_HASH_BACKEND`` set by the user is respected (eth-hash's own
    switch). eth-hash's ``Keccak256`` keeps its backend in ``_backend`` and replaces
    its ``hasher``/``preimage`` on first use; resetting both makes the next call
    settle on the new backend. Returns the backend in use ("pysha3" or eth-hash's
    choice, "auto").
    """
    import os

    if os.environ.get("ETH_HASH_BACKEND"):
        return os.environ["ETH_HASH_BACKEND"]
    try:
        from eth_hash.backends.pysha3 import PySha3Backend
    except ImportError:  # safe-pysha3 not installed: eth-hash's choice stands
        return "auto"
    from eth_hash.auto import keccak

    shared: Any = keccak
    if not isinstance(shared._backend, PySha3Backend):
        shared._backend = PySha3Backend()
        shared.hasher = shared._hasher_first_run
        shared.preimage = shared._preimage_first_run
    return "pysha3"
