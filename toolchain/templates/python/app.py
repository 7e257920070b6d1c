"""A Tributary transform: upper-cases the text field named by `field`."""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

# Set by `init`. Module-level: componentize-py makes a new Processor object
# for every call.
FIELD = [""]


class Processor(exports.Processor):
    def init(self, config: List[Tuple[str, str]]) -> Optional[List[str]]:
        for key, value in config:
            if key != "field":
                raise Err(f"unknown config key `{key}`: expected `field`")
            FIELD[0] = value
        if not FIELD[0]:
            raise Err("config needs `field`, the text field to upper-case")
        return [FIELD[0]]

    def process(self, batch: types.Batch) -> types.Output:
        names = [f.name for f in batch.fields]
        if FIELD[0] not in names:
            raise Err(f"the records have no field `{FIELD[0]}`")
        col = names.index(FIELD[0])
        emit = []
        for n, row in enumerate(batch.rows):
            value = row[col]
            if isinstance(value, types.Value_Text):
                emit.append(types.Emit_Update((n, [(FIELD[0], types.Value_Text(value.value.upper()))])))
            else:
                emit.append(types.Emit_Keep(n))
        return types.Output(emit=emit, dropped=[], rejected=[])

    def on_watermark(self, watermark: int) -> types.Output:
        return types.Output(emit=[], dropped=[], rejected=[])
