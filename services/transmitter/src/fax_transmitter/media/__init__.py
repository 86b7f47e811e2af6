"""Fax media: RTP G.711 and UDPTL T.38 carrying T.30 through spandsp, all channels ticked by one ``DspLoop``."""

from fax_transmitter.media.call import FaxCall, PortRange
from fax_transmitter.media.dsp_loop import DspLoop

__all__ = ["DspLoop", "FaxCall", "PortRange"]
