"""Text bytes from Chinese offices: UTF-8 (with or without BOM) or else GB18030.

Windows in China saves CSV and DBF text as GBK (Excel's "CSV" and ArcGIS alike); GB18030 is its
superset and decodes every GBK file. UTF-8 is tried first: a GBK file almost never passes as
UTF-8, while UTF-8 bytes often pass as GB18030. One rule, for every reader that gets bytes.

Examples
--------
>>> decoded("碧溪".encode("gbk"))
('碧溪', 'gb18030')
>>> decoded(b"\\xef\\xbb\\xbfid")
('id', 'utf-8-sig')
"""

from __future__ import annotations

#: tried in this order
ENCODINGS = ("utf-8-sig", "gb18030")


def decoded(data: bytes) -> tuple[str, str] | None:
    """``(text, encoding)`` of the first of :data:`ENCODINGS` that decodes ``data``, else None."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None
