"""The fax engine: T.30 by spandsp (``spandsp``, ``t30``) over RTP G.711 or UDPTL T.38 media (``rtp``, ``udptl``,
``jitter``, ``peer``), every call's channel ticked in one of a ``DspLoop``'s worker processes (``channel``,
``dsp_clock``, ``dsp_worker``, ``dsp_loop``, ``call``), the SIP side of a fax call (``sip_call``) and an in-process
far end (``loopback``). The transmitter and faxsim are both fax endpoints built on it; it knows nothing of jobs,
tenants or storage.

Modules are imported by name (``from fax_media.call import FaxCall``): importing the package loads nothing.
"""
