"""8N1 UART receiver and transmitter with stream interfaces (for the board's USB UART)."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


def _check_divisor(obj, divisor):
    # A component refused by its constructor is not "created but never used".
    obj._MustUse__silence = True
    if not isinstance(divisor, int) or isinstance(divisor, bool):
        raise TypeError(f"UART divisor must be an integer, not {divisor!r}")
    if divisor < 4:
        raise ValueError(f"UART divisor must be at least 4 clock cycles per bit, not {divisor}")
    obj._MustUse__silence = False


class UARTRx(wiring.Component):
    """8N1 receiver.

    Members
    -------
    rx : ``In(1, init=1)``
        Serial line (idle high), synchronised internally.
    o : ``Out(stream.Signature(8))``
        Received bytes. One byte is buffered: a byte completed while the previous one is still
        not taken is dropped and sets ``overrun``.
    overrun : ``Out(1)``
        Sticky: a byte was lost because ``o`` was not ready.
    frame_error : ``Out(1)``
        Sticky: a byte had a low stop bit (it is dropped).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 4.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    overrun: Out(1)
    frame_error: Out(1)

    def __init__(self, divisor):
        _check_divisor(self, divisor)
        self._divisor = divisor
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        div = self._divisor
        timer = Signal(range(div + div // 2 + 1))
        bits = Signal(8)
        count = Signal(range(9))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Sample mid-bit: wait half a bit, confirm the start bit, then whole bits.
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"      # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(div - 1), count.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [bits.eq(Cat(bits[1:], rx)), count.eq(count + 1),
                                 timer.eq(div - 1)]
                    with m.If(count == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(bits), self.o.valid.eq(1)]
                    # Back to idle mid stop bit: the next start edge is caught in time.
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Members
    -------
    i : ``In(stream.Signature(8))``
        Bytes to send; taken when the line is idle.
    tx : ``Out(1, init=1)``
        Serial line (idle high).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        _check_divisor(self, divisor)
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        timer = Signal(range(div))
        shreg = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(shreg[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), left.eq(10), timer.eq(div - 1)]
        with m.Elif(left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), left.eq(left - 1), timer.eq(div - 1)]
        return m
