"""A Tributary transform: upper-cases the text field named by `field`.

A batch arrives as columns (wit/transform.wit, tributary:transform@0.2.0):
a text column is one UTF-8 buffer, `data`, and `offsets` (row i is
data[offsets[i]:offsets[i + 1]]), with a `validity` bitmap when some rows
are null. The answer keeps every row (`rows=None`) and patches one field.
"""

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
        column = batch.columns[names.index(FIELD[0])]
        if not isinstance(column.values, types.Values_Text):
            # Not text: every row as it is.
            return types.Output(rows=None, patches=[], dropped=[], rejected=[])
        text = column.values.value
        offsets, data = [0], bytearray()
        for i in range(batch.len):
            data += text.data[text.offsets[i] : text.offsets[i + 1]].decode().upper().encode()
            offsets.append(len(data))
        # Set only the rows that have a value (`set` is a bitmap like
        # `validity`; None: all rows): a null stays null.
        upper = types.Column(types.Values_Text(types.Packed(offsets, bytes(data))), None)
        patch = types.Patch(FIELD[0], upper, column.validity)
        return types.Output(rows=None, patches=[patch], dropped=[], rejected=[])

    def on_watermark(self, watermark: int) -> types.Output:
        return types.Output(rows=None, patches=[], dropped=[], rejected=[])
