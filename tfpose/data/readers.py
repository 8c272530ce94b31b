"""Every built-in dataset reader, registered: import the lookups from here, not from ``formats``.

``formats`` holds the registry (and the COCO reader); each other reader module imports it and registers itself,
so this module, which imports them all, is the one place that knows the list. A new built-in reader adds its
import below."""

from tfpose.data import detected  # noqa: F401  (registers detected)
from tfpose.data import lsp  # noqa: F401  (registers lsp, lspet, parse)
from tfpose.data.formats import FormatSpec, get_format, list_formats, read_dataset  # noqa: F401
