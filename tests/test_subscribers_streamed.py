"""subscribers.csv read line by line: the same list as reading it whole, in flat memory.

The reader decides how to decode on a first pass over the bytes that keeps no text, then reads
the rows through an incremental decoder, one chunk of bytes at a time. Each test here is a way
that could differ from reading the whole file at once: a character or a line end cut by a
chunk, a non-UTF-8 byte far from the start, a file saved over between the two passes.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsflash import subscriber_rows, subscribers
from newsflash.errors import SubscribersError
from newsflash.subscriber_rows import decide, lines, text_lines
from newsflash.subscribers import load_subscribers, parse_subscribers

HEADER = "email,first_name,status\n"


def read_whole(data: bytes) -> tuple[str, str, int | None]:
    """The reference: how the list was decoded when its bytes and text were held whole
    (newsflash before the streamed reader), as (text, encoding, first legacy line)."""
    codec = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0 and data[2] != 0:
        codec = "utf-16-le"
    elif len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] != 0 and data[3] != 0:
        codec = "utf-16-be"
    if codec is not None:
        try:
            return data.decode(codec).removeprefix("\ufeff"), "utf-16", None
        except UnicodeDecodeError:
            pass
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data.decode("utf-8-sig"), "utf-8", None
    except UnicodeDecodeError as exc:
        # utf-8-sig counts from after its BOM (newsflash before 0.x counted from the file's
        # start and so could name the line above the bad byte)
        bad_line = data.count(b"\n", 0, exc.start + bom) + 1
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    valid_non_ascii = any(not ("\udc80" <= c <= "\udcff") and ord(c) > 127 for c in text)
    return text, "mixed" if valid_non_ascii else "legacy", bad_line


def streamed(data: bytes) -> tuple[str, str, int | None]:
    decision = decide(io.BytesIO(data))
    text = "".join(text_lines(io.BytesIO(data), decision))
    return text, decision.encoding, decision.first_legacy_line


PIECES = st.sampled_from(
    [
        b"ann@example.org",
        b",",
        b"\n",
        b"\r",
        b"\r\n",
        b"\xef\xbb\xbf",  # a UTF-8 BOM
        "é".encode(),
        "€".encode(),
        "𝄞".encode(),  # four bytes
        b"\xe9",  # Latin-1 é: not UTF-8
        b"\xff\xfe",  # a UTF-16 BOM
        b"\x00",
        b"\xc3",  # half of a two-byte character
        "é".encode("utf-16-le"),
        "ann".encode("utf-16-le"),
        '"',
    ]
).map(lambda p: p if isinstance(p, bytes) else p.encode())


@contextlib.contextmanager
def chunks_of(size: int) -> Iterator[None]:
    """The reader's chunk size, made tiny so every cut a big file can have happens here."""
    saved = subscriber_rows.CHUNK
    subscriber_rows.CHUNK = size
    try:
        yield
    finally:
        subscriber_rows.CHUNK = saved


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.binary(max_size=60), st.lists(PIECES, max_size=30).map(b"".join)),
    st.sampled_from([1, 2, 3, 5, 64]),
)
@example(b"\xef\xbb\xbfemail\r\nann@example.org\r\n\xe9", 1)
@example("email\né\n".encode() + b"\xe9\n", 2)
@example(b"email\n" + "é".encode()[:1], 3)
@example(b"\xff\xfe" + "email\r\nann".encode("utf-16-le"), 3)
def test_reading_by_chunks_decodes_exactly_as_reading_the_whole_file(
    data: bytes, chunk: int
) -> None:
    with chunks_of(chunk):
        assert streamed(data) == read_whole(data)


def test_the_lines_of_a_file_are_the_lines_of_its_text_whatever_the_chunk_size() -> None:
    text = "email\r\nann@example.org\rbob@example.org\n\r\n\ncarol@example.org\r"
    data = text.encode()
    for chunk in range(1, len(data) + 2):
        with chunks_of(chunk):
            assert list(text_lines(io.BytesIO(data), decide(io.BytesIO(data)))) == list(
                lines(text)
            ), chunk


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(data)
    return path


def test_a_latin1_byte_far_past_the_first_chunk_still_makes_the_file_latin1_from_line_one(
    tmp_path: Path,
) -> None:
    rows = "".join(f"p{i}@example.org,Ann,subscribed\n" for i in range(20_000))
    data = (HEADER + rows).encode() + "zoe@example.org,Zoé,subscribed\n".encode("cp1252")
    assert len(data) > 4 * subscriber_rows.CHUNK

    sl = load_subscribers(write(tmp_path, data))

    assert sl.recipients[-1].first_name == "Zoé"
    (warning,) = sl.problems
    assert warning.line == 20_002 and "Latin-1" in warning.message


def test_a_latin1_byte_right_after_a_line_end_in_a_file_with_a_bom_is_named_on_its_own_line(
    tmp_path: Path,
) -> None:
    # Reading the whole file, the line was counted from after the BOM: it named line 2.
    data = codecs.BOM_UTF8 + b"first_name,email,status\nAnn,ann@example.org,subscribed\n"
    data += "\xc9mile,emile@example.org,subscribed\n".encode("cp1252")

    sl = load_subscribers(write(tmp_path, data))

    (warning,) = sl.problems
    assert warning.line == 3 and "Latin-1" in warning.message
    assert [r.first_name for r in sl.audience()] == ["Ann", "\xc9mile"]


def test_a_list_read_from_its_file_is_the_list_read_from_its_text(tmp_path: Path) -> None:
    text = (
        "\ufeffemail;first_name;status;segments\r\n"
        + "".join(f"p{i}@example.org;Ann{i};subscribed;wg{i % 3}\r\n" for i in range(9_000))
        + 'bad@example.org;"Open quote;subscribed\r\n'
        + "P1@EXAMPLE.ORG;Dup;unsubscribed\r\n"
    )
    from_file = load_subscribers(write(tmp_path, text.encode()))
    from_text = parse_subscribers(text, tmp_path / "subscribers.csv")

    assert from_file == from_text
    assert [p.line for p in from_file.problems] == [9_002, 9_003]


def test_reading_a_list_holds_neither_its_bytes_nor_its_text(tmp_path: Path) -> None:
    # 4 MB of the blank rows spreadsheets leave below the data: nothing in them is kept.
    data = (HEADER + "ann@example.org,Ann,subscribed\n" + ("," * 39 + "\n") * 100_000).encode()
    path = write(tmp_path, data)

    tracemalloc.start()
    try:
        sl = load_subscribers(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [r.email for r in sl.audience()] == ["ann@example.org"]
    assert peak < len(data) / 10, f"peak {peak:,} bytes for a file of {len(data):,}"


class _SavedOverBetweenPasses(io.BytesIO):
    """A file the secretariat saves over (as Latin-1) once the reader's first pass is done."""

    def __init__(self, first: bytes, then: bytes) -> None:
        super().__init__(first)
        self.then: bytes | None = then

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if not data and self.then is not None:  # the end of the first pass
            super().seek(0)
            self.truncate()
            self.write(self.then)
            self.then = None
        return data


def test_a_list_saved_over_as_latin1_while_it_is_read_is_refused_clearly() -> None:
    good = (HEADER + "zoe@example.org,Zoé,subscribed\n").encode()
    stream = _SavedOverBetweenPasses(good, good.decode().encode("cp1252"))

    with pytest.raises(SubscribersError, match="changed while it was being read") as caught:
        subscribers._parse(stream, Path("subscribers.csv"))

    assert "subscribers.csv" in str(caught.value)


def test_a_directory_in_place_of_the_list_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError, match="is a directory"):
        load_subscribers(tmp_path)


def test_a_list_that_cannot_be_opened_is_refused_naming_why(tmp_path: Path) -> None:
    # A path under a file fails to open for every user, root included (unlike chmod 0).
    path = write(tmp_path, HEADER.encode()) / "subscribers.csv"
    with pytest.raises(SubscribersError, match=r"cannot read .*Not a directory"):
        load_subscribers(path)


def test_partners_of_one_organisation_share_one_copy_of_its_name() -> None:
    text = "email,organisation,status\n" + "".join(
        f"p{i}@example.org,  Volta   GmbH ,subscribed\n" for i in range(3)
    )

    first, second, third = parse_subscribers(text, Path("subscribers.csv")).recipients

    assert first.organisation == "Volta GmbH"
    assert first.organisation is second.organisation is third.organisation
