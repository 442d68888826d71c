"""SnapshotCodec: sealed snapshots and their producedAt stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from connector.snapshot_codec import PRODUCED_AT_STEP, SnapshotCodec
from shared.authstate import AuthState
from shared.sealing import open_sealed, public_key_bytes
from shared.snapshot import Snapshot, snapshot_aad

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class SteppingClock:
    def __init__(self, *times: datetime) -> None:
        self.times = list(times)

    def __call__(self) -> datetime:
        return self.times.pop(0)


def codec_with(clock: SteppingClock) -> tuple[SnapshotCodec, X25519PrivateKey]:
    vault_key = X25519PrivateKey.generate()
    codec = SnapshotCodec("c-1", vault_public_key=public_key_bytes(vault_key), vault_key_id="1", wall_clock=clock)
    return codec, vault_key


def produced(codec: SnapshotCodec, vault_key: X25519PrivateKey, account_id: str, generation: int) -> datetime:
    sealed = codec.seal(account_id, generation, AuthState.generate())
    return Snapshot.from_bytes(open_sealed(sealed, vault_key, snapshot_aad(account_id))).produced_at


def test_produced_at_never_goes_back_when_the_clock_steps_back() -> None:
    back = T0 - timedelta(seconds=5)
    codec, key = codec_with(SteppingClock(T0, back, back, T0 + timedelta(seconds=1)))
    stamps = [produced(codec, key, "a1", 3) for _ in range(4)]
    assert stamps == [T0, T0 + PRODUCED_AT_STEP, T0 + 2 * PRODUCED_AT_STEP, T0 + timedelta(seconds=1)]


def test_the_same_instant_twice_still_orders_the_snapshots() -> None:
    codec, key = codec_with(SteppingClock(T0, T0))
    assert produced(codec, key, "a1", 1) < produced(codec, key, "a1", 1)


def test_stamps_are_kept_per_account_and_generation() -> None:
    back = T0 - timedelta(seconds=5)
    codec, key = codec_with(SteppingClock(T0, back, back))
    assert produced(codec, key, "a1", 1) == T0
    assert produced(codec, key, "a2", 1) == back  # another account: its own sequence
    assert produced(codec, key, "a1", 2) == back  # a new generation: the vault orders by generation first
