"""boundlab.io: the bottom layer every other layer shares (no numerics beyond numpy, no torch).

* :mod:`~boundlab.io.errors`: the error hierarchy (bad input / failed solve / failed check);
* :mod:`~boundlab.io.results`: the atomic writer, the reader, the config hash, the metadata block;
* :mod:`~boundlab.io.seeds`: :func:`derive_seed`, the one seed derivation;
* :mod:`~boundlab.io.progress`: the progress protocol (library code reports, the CLI displays);
* :mod:`~boundlab.io.executor`: idempotent units run in process, on local Dask or on a cluster.
"""

from .errors import BoundlabError, CheckError, InputError, SolveError
from .progress import Event, Reporter, emit
from .results import (
           atomic_file,
           config_hash,
           dumps,
           metadata_block,
           read_json,
           write_json,
           write_npz,
           write_text,
)
from .seeds import derive_seed

__all__ = ["BoundlabError", "CheckError", "InputError", "SolveError", "Event", "Reporter", "emit", "atomic_file",
           "config_hash", "dumps", "metadata_block", "read_json", "write_json", "write_npz", "write_text",
           "derive_seed"]
