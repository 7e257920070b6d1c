"""A Tributary transform in Python: curates news articles.

- drops articles whose `source` is on the block list (`block_sources`,
  comma-separated), counted as filtered;
- masks the `author` field (first letter, then `***`);
- adds `title_words`, the number of words in the title.

For the sandbox tests, `misbehave` makes it loop forever (`spin`), allocate
without end (`membomb`) or raise (`trap`) on its first batch.

Build (see build.sh): componentize-py -d ../../../wit/v0.1 -w transform componentize app -o curate.wasm
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
        col = {f.name: i for i, f in enumerate(batch.fields)}
        for name in ("source", "title", "author"):
            if name not in col:
                raise Err(f"curate needs a `{name}` field")
        emit, dropped = [], []
        for n, row in enumerate(batch.rows):
            source = row[col["source"]]
            if isinstance(source, types.Value_Text) and source.value in BLOCKED:
                dropped.append(types.Dropped(row=n, reason=types.DropReason.FILTERED))
                continue
            title = row[col["title"]]
            words = len(title.value.split()) if isinstance(title, types.Value_Text) else 0
            sets = [("title_words", types.Value_Int(words))]
            author = row[col["author"]]
            if isinstance(author, types.Value_Text) and author.value:
                sets.append(("author", types.Value_Text(author.value[0] + "***")))
            emit.append(types.Emit_Update((n, sets)))
        return types.Output(emit=emit, dropped=dropped, rejected=[])

    def on_watermark(self, watermark: int) -> types.Output:
        return types.Output(emit=[], dropped=[], rejected=[])

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
