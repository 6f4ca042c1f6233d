"""Personal fields at rest and on screen: AES-GCM, a keyed hash, GB 11643 and masking.

Residents' names, ID numbers (身份证号, sensitive personal information under the Personal
Information Protection Law) and phones are never written to the project file in clear: each is
sealed with AES-GCM under a key that lives outside the file (``GRIDMAP_HOUSEHOLD_KEY``, or a key
file named by ``GRIDMAP_HOUSEHOLD_KEY_FILE``), bound to its row and column so that a sealed value
copied onto another record does not open. An ID number is also kept as a keyed hash (HMAC-SHA256
under a second key derived from the same secret), so an exact lookup needs no decryption and the
hash says nothing to someone without the key. What a screen shows is masked by default.

Examples
--------
>>> keys = Keyring(bytes(32))
>>> sealed = keys.seal("张三", "households", "H1", "head_name")
>>> b"\\xe5\\xbc\\xa0" in sealed, keys.open(sealed, "households", "H1", "head_name")
(False, '张三')
>>> mask_id("320581199001011234"), mask_phone("13812345678"), mask_name("欧阳小明")
('320581********1234', '138****5678', '欧***')
>>> id_check_digit("11010519491231002")
'X'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

from geo.errors import InputError

KEY_ENV = "GRIDMAP_HOUSEHOLD_KEY"
KEY_FILE_ENV = "GRIDMAP_HOUSEHOLD_KEY_FILE"
_NONCE = 12
#: GB 11643-1999: the weights of the first 17 digits and the check characters by remainder
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID = re.compile(r"^\d{17}[\dX]$")
_MISSING = (
    f"no household key: set {KEY_ENV} or {KEY_FILE_ENV} "
    "('gridmap households keygen FILE' makes one; keep it outside the project file)"
)


class Keyring:
    """The two keys derived from one 32-byte secret: one seals, one hashes.

    Parameters
    ----------
    secret : bytes
        32 random bytes (``gridmap households keygen`` writes them base64-encoded).
    """

    def __init__(self, secret: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(secret) != 32:
            raise InputError(
                f"the household key must be 32 bytes, not {len(secret)}",
                zh=f"住户密钥应为 32 字节，而不是 {len(secret)} 字节",
            )
        self._aead = AESGCM(_derive(secret, b"gridmap households seal"))
        self._hash_key = _derive(secret, b"gridmap households lookup")

    def seal(self, text: str | None, table: str, record: str, column: str) -> bytes | None:
        """``text`` encrypted for one cell (None and "" stay None)."""
        if text is None or text == "":
            return None
        nonce = secrets.token_bytes(_NONCE)
        bound = f"{table}\x1f{record}\x1f{column}".encode()
        return nonce + self._aead.encrypt(nonce, text.encode("utf-8"), bound)

    def open(self, sealed: bytes | None, table: str, record: str, column: str) -> str | None:
        """The text :meth:`seal` sealed for this cell; InputError if the key is not the one used."""
        from cryptography.exceptions import InvalidTag

        if sealed is None:
            return None
        bound = f"{table}\x1f{record}\x1f{column}".encode()
        try:
            plain = self._aead.decrypt(bytes(sealed[:_NONCE]), bytes(sealed[_NONCE:]), bound)
        except InvalidTag:
            raise InputError(
                "a household record does not open with this key: the key is not the one the "
                "records were sealed with",
                zh="住户记录无法用此密钥解密：密钥与加密时所用的不同",
            ) from None
        return plain.decode("utf-8")

    def digest(self, text: str, purpose: str = "id") -> str:
        """A keyed hash (hex) of ``text`` for exact lookup or change detection."""
        message = f"{purpose}\x1f{text}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def check_value(self) -> str:
        """What the project file keeps to tell a wrong key from a right one (reveals nothing)."""
        return self.digest("gridmap key check", "check")[:16]


def _derive(secret: bytes, label: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret)


def new_key_text() -> str:
    """A new random secret, as the text a key file or the environment variable holds."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def load_keyring(key_file: str | os.PathLike[str] | None = None) -> Keyring:
    """The keyring from ``key_file``, else ``GRIDMAP_HOUSEHOLD_KEY``, else the file named by
    ``GRIDMAP_HOUSEHOLD_KEY_FILE``; a one-line InputError when none is given or it is malformed."""
    text = None
    file_name = key_file or os.environ.get(KEY_FILE_ENV)
    if key_file is None and os.environ.get(KEY_ENV):
        text = os.environ[KEY_ENV]
    elif file_name:
        try:
            text = Path(file_name).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(
                f"cannot read the household key file {file_name}: {error}",
                zh=f"无法读取住户密钥文件 {file_name}",
            ) from None
    if not text or not text.strip():
        raise InputError(_MISSING, zh=f"缺少住户密钥：请设置 {KEY_ENV} 或 {KEY_FILE_ENV}")
    return Keyring(_decode_key(text.strip()))


def _decode_key(text: str) -> bytes:
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        return base64.b64decode(
            text, altchars=b"-_" if "-" in text or "_" in text else None, validate=True
        )
    except (binascii.Error, ValueError):
        raise InputError(
            "the household key is neither base64 nor hex of 32 bytes",
            zh="住户密钥格式不对：应为 32 字节的 base64 或十六进制",
        ) from None


# -- ID numbers and phones -----------------------------------------------------------------------


def normalise_id(text: object) -> str:
    """An ID number as compared: NFKC (full-width digits), no spaces, upper-case X."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or ""))).upper()


def id_check_digit(first17: str) -> str:
    """GB 11643's check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def valid_id(text: str) -> bool:
    """Whether ``text`` (normalised) is an 18-character ID number with the right check character."""
    return bool(_ID.match(text)) and id_check_digit(text[:17]) == text[17]


def normalise_phone(text: object) -> str:
    """A phone as digits only (NFKC first; a leading +86/86 on a mobile dropped)."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", str(text or "")))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def mask_id(text: str | None) -> str:
    """``320581********1234``: the region and the last four, never the birth date."""
    if not text:
        return ""
    return (
        text[:6] + "*" * max(len(text) - 10, 0) + text[-4:] if len(text) > 10 else "*" * len(text)
    )


def mask_phone(text: str | None) -> str:
    """``138****5678`` for a mobile; a landline keeps its last four."""
    if not text:
        return ""
    if len(text) == 11:
        return text[:3] + "****" + text[-4:]
    return "*" * max(len(text) - 4, 0) + text[-4:]


def mask_name(text: str | None) -> str:
    """The family name (first character) and a star per other character: ``张**``."""
    if not text:
        return ""
    return text[0] + "*" * (len(text) - 1)
