"""Form bodies (urlencoded and multipart/form-data) read with the standard library only."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

FormValue = str | bytes


def parse_form(content_type: str, body: bytes) -> dict[str, FormValue]:
    """Fields of a form body: text as `str`, file parts as `bytes`. ValueError if unreadable."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    if media_type != "multipart/form-data":
        raise ValueError(f"not a form body: {media_type or 'no content type'}")
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ValueError("the multipart body has no parts")
    fields: dict[str, FormValue] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise ValueError("a form part has no name")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise ValueError(f"form part {name!r} is not readable")
        fields[name] = payload if part.get_filename() is not None else payload.decode("utf-8")
    return fields
