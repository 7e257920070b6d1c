"""A Tributary transform in Python: curates news articles.

- drops articles whose `source` is on the block list (`block_sources`,
  comma-separated), counted as filtered;
- masks the `author` field (first letter, then `***`);
- adds `title_words`, the number of words in the title.

Contract tributary:transform@0.2.0 (wit/transform.wit): a batch arrives as
columns (`text_column` reads one), and the answer names the rows kept by
number and sets fields on them with patches, one column per field.

For the sandbox tests, `misbehave` makes it loop forever (`spin`), allocate
without end (`membomb`) or raise (`trap`) on its first batch.

Build (see build.sh): componentize-py -d ../../../wit -w transform componentize app -o curate.wasm
"""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types

MISBEHAVIOURS = ("", "spin", "membomb", "trap")

# The configuration, set by `init`. Module-level: componentize-py creates a
# new `Processor` object for every call, so instance attributes do not last.
BLOCKED = set()
MISBEHAVE = [""]


def text_column(batch: types.Batch, name: str) -> List[Optional[str]]:
    """Column `name` as one str per row: None where the row is null (or the
    column is not text). A text column is one UTF-8 buffer, `data`, and
    `offsets`: row i is data[offsets[i]:offsets[i + 1]]."""
    names = [f.name for f in batch.fields]
    if name not in names:
        raise Err(f"curate needs a `{name}` field")
    column = batch.columns[names.index(name)]
    if not isinstance(column.values, types.Values_Text):
        return [None] * batch.len
    offsets, data = column.values.value.offsets, column.values.value.data
    valid = column.validity  # one bit per row, LSB first; None: no nulls
    return [
        data[offsets[i] : offsets[i + 1]].decode()
        if valid is None or valid[i >> 3] >> (i & 7) & 1
        else None
        for i in range(batch.len)
    ]


def bitmap(flags: List[bool]) -> bytes:
    """One bit per entry, LSB first, as the contract's bitmaps are."""
    bits = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


class Processor(exports.Processor):
    def init(self, config: List[Tuple[str, str]]) -> Optional[List[str]]:
        for key, value in config:
            if key == "block_sources":
                BLOCKED.clear()
                BLOCKED.update(s.strip() for s in value.split(",") if s.strip())
            elif key == "misbehave":
                if value not in MISBEHAVIOURS:
                    raise Err(f"misbehave must be one of spin, membomb, trap, not `{value}`")
                MISBEHAVE[0] = value
            else:
                raise Err(f"unknown config key `{key}`: use block_sources (and misbehave, for tests)")
        log.write(log.Level.INFO, f"curate: blocking {sorted(BLOCKED)}")
        return ["source", "title", "author"]

    def process(self, batch: types.Batch) -> types.Output:
        self.act_up()
        source, title, author = (text_column(batch, name) for name in ("source", "title", "author"))
        # The answer: the rows kept (by number), and per kept row its word
        # count and, where it has an author, the masked author.
        rows, dropped, words, masked = [], [], [], []
        offsets, data = [0], bytearray()
        for n in range(batch.len):
            if source[n] in BLOCKED:
                dropped.append(types.Dropped(row=n, reason=types.DropReason.FILTERED))
                continue
            rows.append(n)
            words.append(len(title[n].split()) if title[n] is not None else 0)
            masked.append(bool(author[n]))
            if author[n]:
                data += (author[n][0] + "***").encode()
            offsets.append(len(data))
        patches = [
            # Every output row gets `title_words` (a new field: added).
            types.Patch("title_words", types.Column(types.Values_Int(words), None), None),
            # Only the rows with an author are set; the others keep theirs.
            types.Patch(
                "author",
                types.Column(types.Values_Text(types.Packed(offsets, bytes(data))), None),
                bitmap(masked),
            ),
        ]
        return types.Output(rows=rows, patches=patches, dropped=dropped, rejected=[])

    def on_watermark(self, watermark: int) -> types.Output:
        return types.Output(rows=[], patches=[], dropped=[], rejected=[])

    def act_up(self) -> None:
        if MISBEHAVE[0] == "spin":
            while True:
                pass
        if MISBEHAVE[0] == "membomb":
            hog = []
            while True:
                hog.append(bytearray(1 << 20))
        if MISBEHAVE[0] == "trap":
            raise RuntimeError("curate was told to fail")
