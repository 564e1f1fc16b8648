"""A browser's part in the tests of examples/gallery on both targets: the curator's
login (the project's own admin, from its fixture) and an image upload through the site."""

from __future__ import annotations

import re
import struct
import zlib

import requests

CURATOR = ("curator", "curator-sample-password")  # the project's fixture, not the collection's


def tiny_png(seed: int) -> bytes:
    """A valid 1x1 PNG whose one pixel depends on seed (so each upload is its own file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixel = bytes([0, seed % 256, (seed // 256) % 256, 7])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))


def curator_session(url: str) -> requests.Session:
    session = requests.Session()
    login = session.get(url + "/admin/login/", timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    done = session.post(url + "/admin/login/?next=/admin/", allow_redirects=False, timeout=30,
                        data={"csrfmiddlewaretoken": token, "username": CURATOR[0], "password": CURATOR[1],
                              "next": "/admin/"}, headers={"Referer": url + "/admin/login/"})
    assert done.status_code == 302 and "sessionid" in session.cookies, done.status_code
    return session


def upload(url: str, title: str, png: bytes) -> str:
    """Upload png through the site as the curator; the photo page's path."""
    session = curator_session(url)
    form = session.get(url + "/upload/", timeout=15)
    assert form.status_code == 200, form.status_code
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    done = session.post(url + "/upload/", allow_redirects=False, timeout=30, headers={"Referer": url + "/upload/"},
                        data={"csrfmiddlewaretoken": token, "title": title},
                        files={"image": (f"{title}.png", png, "image/png")})
    assert done.status_code == 302 and done.headers["Location"].startswith("/photos/"), (done.status_code, done.text[-800:])
    return done.headers["Location"]
