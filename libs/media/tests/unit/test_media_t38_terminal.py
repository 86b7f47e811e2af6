"""The T.38 terminal and G.711 bindings: two terminals exchange IFPs in-process, unpaced, and a fax goes through."""

import ctypes
import gc
import math
from collections import deque
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from fax_media import spandsp
from fax_media.udptl import UdptlDecoder, UdptlEncoder


def make_page(path: Path) -> Path:
    page = Image.new("1", (1728, 600), 1)
    ImageDraw.Draw(page).rectangle((100, 100, 900, 400), fill=0)
    page.save(path, compression="group4", dpi=(204, 98))
    return path


def test_two_t38_terminals_send_a_page_through_udptl(tmp_path: Path) -> None:
    document = make_page(tmp_path / "page.tif")
    received = tmp_path / "received.tif"
    wires: dict[str, deque[bytes]] = {"to_answerer": deque(), "to_caller": deque()}
    encoders = {"to_answerer": UdptlEncoder(max_datagram=300), "to_caller": UdptlEncoder(max_datagram=300)}
    codes: dict[str, int] = {}

    def sender(direction: str) -> spandsp.T38PacketSender:
        def send(ifp: bytes, count: int) -> None:
            wires[direction].extend([encoders[direction].encode(ifp)] * count)

        return send

    with (
        spandsp.T38FaxTerminal(calling=True, name="caller", send_packet=sender("to_answerer")) as caller,
        spandsp.T38FaxTerminal(calling=False, name="answerer", send_packet=sender("to_caller")) as answerer,
    ):
        caller.t30.set_tx_ident("CALLER")
        answerer.t30.set_tx_ident("ANSWERER")
        caller.t30.set_tx_file(document)
        answerer.t30.set_rx_file(received)
        caller.t30.set_phase_e_handler(lambda code: codes.__setitem__("caller", code))
        answerer.t30.set_phase_e_handler(lambda code: codes.__setitem__("answerer", code))
        gc.collect()  # the thunks must survive a collection: the terminals hold them
        decoders = {"to_answerer": UdptlDecoder(), "to_caller": UdptlDecoder()}
        for _ in range(50 * 120):
            for terminal, direction in ((answerer, "to_answerer"), (caller, "to_caller")):
                # Deliver outside the send callback, as spandsp requires.
                arrived = list(wires[direction])
                wires[direction].clear()
                for datagram in arrived:
                    for sequence, ifp in decoders[direction].decode(datagram):
                        terminal.rx_packet(ifp, sequence)
            caller.send_timeout(160)
            answerer.send_timeout(160)
            if len(codes) == 2:
                break
        assert caller.t30.rx_ident() == "ANSWERER"
    assert codes == {"caller": spandsp.T30_ERR_OK, "answerer": spandsp.T30_ERR_OK}
    assert decoders["to_answerer"].stats.duplicate > 0  # indicators were sent in several copies
    with Image.open(received) as got, Image.open(document) as sent:
        assert got.convert("1").tobytes() == sent.convert("1").tobytes()
    with pytest.raises(RuntimeError):
        caller.send_timeout(160)


@pytest.mark.parametrize("alaw", [True, False])
def test_g711_round_trip_keeps_a_tone(alaw: bool) -> None:
    encoder, decoder = spandsp.G711Codec(alaw=alaw), spandsp.G711Codec(alaw=alaw)
    tone = (ctypes.c_int16 * 160)(*(int(8000 * math.sin(2 * math.pi * 1100 * n / 8000)) for n in range(160)))
    payload = encoder.encode(tone, 160)
    assert len(payload) == 160
    decoded = (ctypes.c_int16 * 160)()
    assert decoder.decode(payload, decoded) == 160
    assert max(abs(a - b) for a, b in zip(tone, decoded, strict=True)) < 8000 * 0.04
    if alaw:
        assert payload[0] == 0xD5  # A-law of 0 (even bits inverted)
    encoder.close()
    decoder.close()
    encoder.close()
    with pytest.raises(RuntimeError):
        encoder.encode(tone, 160)
