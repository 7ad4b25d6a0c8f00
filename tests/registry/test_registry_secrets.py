"""Device keys sealed at rest (AES-256-GCM under the server key); operator tokens and
passwords stored only as scrypt hashes."""

import os

import pytest
from sqlalchemy import select
from urelief.registry import credentials
from urelief.registry.keys import ServerKey, ServerKeyError
from urelief.registry.models import Device, Operator, OperatorToken
from urelief.registry.service import cli_actor


def test_seal_open_and_tamper():
    k = ServerKey(os.urandom(32))
    key = bytes(range(16))
    sealed = k.seal(0x1234, key)
    assert key not in sealed and len(sealed) == 1 + 12 + 16 + 16
    assert k.open(0x1234, sealed) == key
    assert k.seal(0x1234, key) != sealed  # fresh nonce each time
    with pytest.raises(ServerKeyError):
        k.open(0x1235, sealed)  # bound to its device id
    with pytest.raises(ServerKeyError):
        ServerKey(os.urandom(32)).open(0x1234, sealed)  # another server's key
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(ServerKeyError):
        k.open(0x1234, flipped)


def test_server_key_from_env_and_file(tmp_path):
    raw = os.urandom(32)
    assert ServerKey.from_env({"URELIEF_SERVER_KEY": raw.hex()}).fingerprint == ServerKey(raw).fingerprint
    path = ServerKey.generate(tmp_path / "server.key")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    a = ServerKey.from_env({"URELIEF_SERVER_KEY_FILE": str(path)})
    assert a.fingerprint == ServerKey.from_file(path).fingerprint
    with pytest.raises(FileExistsError):
        ServerKey.generate(path)
    with pytest.raises(ServerKeyError):
        ServerKey.from_env({})
    with pytest.raises(ServerKeyError):
        ServerKey.from_env({"URELIEF_SERVER_KEY": "abcd"})
    made = ServerKey.load_or_create({"URELIEF_VAR": str(tmp_path / "var")})
    assert made.fingerprint == ServerKey.load_or_create({"URELIEF_VAR": str(tmp_path / "var")}).fingerprint


def test_device_key_is_not_stored_in_clear(world, registry):
    key = b"\x42" * 16
    registry.register_device(cli_actor(), 0xCAFE, key, school_id=world.schools["A"]["id"])
    with registry.db.Session() as s:
        row = s.get(Device, 0xCAFE)
        assert key not in row.key_sealed and row.sealed_with == registry.server_key.fingerprint
    assert registry.device_key(0xCAFE) == key
    other = type(registry)(registry.db, ServerKey(os.urandom(32)))
    with pytest.raises(ServerKeyError):
        other.device_key(0xCAFE)


def test_tokens_and_passwords_are_hashed(world, registry):
    with registry.db.Session() as s:
        stored = " ".join(t.secret_hash + t.key_id for t in s.scalars(select(OperatorToken)))
        stored += " ".join(o.password_hash or "" for o in s.scalars(select(Operator)))
    for name, token in world.tokens.items():
        assert token.split("_", 2)[2] not in stored
        assert f"{name}-password-123" not in stored
    assert stored.count("scrypt$") == 10


def test_hash_and_verify():
    h = credentials.hash_secret("correct horse", log2_n=10)
    assert credentials.verify_secret("correct horse", h)
    assert not credentials.verify_secret("correct horsf", h)
    assert not credentials.verify_secret("x", "md5$abc")
    assert not credentials.verify_secret("x", "scrypt$40$8$1$AA$AA")  # absurd cost refused
    token, key_id, secret_hash = credentials.new_token()
    assert credentials.split_token(token)[0] == key_id
    assert credentials.verify_secret(credentials.split_token(token)[1], secret_hash)
    assert credentials.split_token("Bearer nonsense") is None
