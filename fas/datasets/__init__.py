"""Dataset adapters: one per on-disk layout, one shared mechanism (`fas index`, `fas check`)."""

from __future__ import annotations

from pathlib import Path

from fas.datasets.base import Adapter
from fas.datasets.casia_fas import CasiaFas, has_lists, list_folders
from fas.datasets.casia_fasd import CasiaFasd
from fas.datasets.cefa import CeFA
from fas.datasets.msu import Msu
from fas.datasets.oulu import Oulu
from fas.datasets.replay import Replay
from fas.datasets.siw import SiW
from fas.datasets.surf import Surf

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.name: adapter for adapter in (CeFA, Surf, Oulu, SiW, Replay, Msu, CasiaFasd, CasiaFas)}


def make_adapter(dataset: str, root: Path, name: str | None = None) -> Adapter:
    """The adapter of `dataset`; for `casia_fas`, of the unified-format folder `name`.

    Without `name`, the unified-format folder is the root itself when it holds
    lists, else the only folder under the root that does; ValueError otherwise.
    """
    if dataset != CasiaFas.name:
        return ADAPTERS[dataset]()
    if name is None:
        candidates = [root.name] if has_lists(root) else list_folders(root)
        if len(candidates) != 1:
            found = ", ".join(candidates) or "none"
            raise ValueError(f"pass --name: the dataset folder holding the lists (found: {found})")
        name = candidates[0]
    return CasiaFas(name)
