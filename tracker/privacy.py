"""Field encryption, blind indexes and research pseudonyms, all from one secret key.

The key (32 random bytes, URL-safe base64) comes from TRACKER_SECRET_KEY or
TRACKER_SECRET_KEY_FILE; on the embedded default `tracker init` creates `tracker.key` (mode 0600).
Separate sub-keys are derived with HKDF so that the blind index cannot be used to decrypt and
pseudonyms from one study cannot be linked to another's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tracker.config import ConfigError, Settings

_NONCE_BYTES = 12


class KeyError_(ConfigError):
    """The secret key is missing or malformed."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
    except (ValueError, UnicodeEncodeError) as exc:
        raise KeyError_(
            "TRACKER_SECRET_KEY is not URL-safe base64 (generate one with `tracker init` "
            "or `python -c 'import secrets,base64;print(base64.urlsafe_b64encode("
            "secrets.token_bytes(32)).decode())'`)"
        ) from exc
    if len(raw) < 32:
        raise KeyError_("TRACKER_SECRET_KEY must hold at least 32 random bytes (base64)")
    return raw


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master)


@dataclass(frozen=True)
class Crypto:
    """Encrypts phone numbers, computes their blind index, and pseudonymises ids."""

    master: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aead", AESGCM(_derive(self.master, b"tracker/phone-aead/v1")))
        object.__setattr__(self, "_index_key", _derive(self.master, b"tracker/phone-index/v1"))
        # Copying a keyed HMAC is cheaper than keying a new one (imports index 10,000s/s).
        object.__setattr__(
            self,
            "_index_hmac",
            hmac.new(self._index_key, digestmod=hashlib.sha256),  # type: ignore[attr-defined]
        )
        object.__setattr__(self, "_erased_key", _derive(self.master, b"tracker/erased-ref/v1"))

    def encrypt_phone(self, e164: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, e164.encode("utf-8"), b"phone")  # type: ignore[attr-defined]

    def decrypt_phone(self, blob: bytes) -> str:
        try:
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], b"phone")  # type: ignore[attr-defined]
        except InvalidTag as exc:
            raise KeyError_(
                "a stored phone number cannot be decrypted with this TRACKER_SECRET_KEY "
                "(was the key changed or lost?)"
            ) from exc
        return plain.decode("utf-8")

    def phone_index(self, e164: str) -> str:
        """Keyed HMAC of the E.164 number: equal numbers give equal indexes, nothing more."""
        digest = self._index_hmac.copy()  # type: ignore[attr-defined]
        digest.update(e164.encode("utf-8"))
        return digest.hexdigest()

    def erased_ref_token(self, ref: str) -> str:
        """Keyed hash of a reference erased on request: lets imports refuse it, reveals nothing."""
        key = self._erased_key  # type: ignore[attr-defined]
        return hmac.new(key, ref.encode("utf-8"), hashlib.sha256).hexdigest()

    def study_key(self, study: str) -> bytes:
        return _derive(self.master, b"tracker/study-pseudonym/v1:" + study.encode("utf-8"))

    def pseudonym(self, study: str, patient_ref: str, *, length: int = 16) -> str:
        """Stable within a study, unlinkable across studies without the secret key."""
        digest = hmac.new(self.study_key(study), patient_ref.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:length]


def load_crypto(settings: Settings) -> Crypto:
    """The Crypto for these settings; says how to fix a missing key."""
    if settings.secret_key is not None:
        return Crypto(decode_key(settings.secret_key.get_secret_value()))
    path = settings.default_key_path
    if settings.is_embedded_sqlite and path.exists():
        return Crypto(decode_key(path.read_text(encoding="ascii")))
    if settings.is_embedded_sqlite:
        raise KeyError_(
            f"no secret key: run `tracker init` (creates {path}) or set TRACKER_SECRET_KEY "
            "or TRACKER_SECRET_KEY_FILE"
        )
    raise KeyError_(
        "no secret key: set TRACKER_SECRET_KEY or TRACKER_SECRET_KEY_FILE "
        "(32 random bytes, URL-safe base64; keep a backup: without it phone numbers are lost)"
    )


def ensure_key_file(path: Path) -> bool:
    """Create a key file readable only by its owner; return True if it was created now."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(generate_key() + "\n")
    return True
