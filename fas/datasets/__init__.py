"""Dataset adapters: one per on-disk layout, one shared mechanism (`fas index`)."""

from fas.datasets.base import Adapter
from fas.datasets.casia_fasd import CasiaFasd
from fas.datasets.cefa import CeFA
from fas.datasets.msu import Msu
from fas.datasets.oulu import Oulu
from fas.datasets.replay import Replay
from fas.datasets.siw import SiW
from fas.datasets.surf import Surf

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.name: adapter for adapter in (CeFA, Surf, Oulu, SiW, Replay, Msu, CasiaFasd)}
