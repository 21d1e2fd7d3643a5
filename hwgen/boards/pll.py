"""ECP5 PLL (EHXPLLL): the divider search and the primitive instance.

With the feedback taken from the CLKOP output (``FEEDBK_PATH = "CLKOP"``)
the output is ``f_out = f_in * CLKFB_DIV / CLKI_DIV`` and the VCO runs at
``f_out * CLKOP_DIV``. Limits (ECP5 family data sheet, sysCLOCK PLL
characteristics): input 8-400 MHz, phase detector ``f_in / CLKI_DIV``
3.125-400 MHz, VCO 400-800 MHz, output 3.125-400 MHz, every divider 1-128.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.errors import BoardError

__all__ = ["ECP5PLL", "PLLConfig", "ecp5_pll_config"]

_MHZ = 1e6
F_IN = (8 * _MHZ, 400 * _MHZ)
F_PFD = (3.125 * _MHZ, 400 * _MHZ)
F_VCO = (400 * _MHZ, 800 * _MHZ)
F_OUT = (3.125 * _MHZ, 400 * _MHZ)
DIV_MAX = 128


@dataclass(frozen=True)
class PLLConfig:
    """Dividers of one EHXPLLL setting, and the frequencies they give (Hz)."""

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out(self) -> float:
        return self.f_in * self.clkfb_div / self.clki_div

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div

    @property
    def f_pfd(self) -> float:
        return self.f_in / self.clki_div


def ecp5_pll_config(f_in: float, f_out: float) -> PLLConfig:
    """The EHXPLLL dividers whose output is closest to ``f_out`` (Hz) from ``f_in``.

    Ties go to the VCO frequency nearest the middle of its range (600 MHz).
    BoardError when a frequency is outside the PLL's range.
    """
    if not F_IN[0] <= f_in <= F_IN[1]:
        raise BoardError(f"the ECP5 PLL takes {F_IN[0] / _MHZ:g}-{F_IN[1] / _MHZ:g} MHz in, not {f_in / _MHZ:g} MHz")
    if not F_OUT[0] <= f_out <= F_OUT[1]:
        raise BoardError(f"the ECP5 PLL makes {F_OUT[0] / _MHZ:g}-{F_OUT[1] / _MHZ:g} MHz, not {f_out / _MHZ:g} MHz")
    best, best_key = None, None
    for clki_div in range(1, DIV_MAX + 1):
        if f_in / clki_div < F_PFD[0]:
            break
        if f_in / clki_div > F_PFD[1]:
            continue
        clkfb_div = max(1, min(DIV_MAX, round(f_out * clki_div / f_in)))  # nearest output for this CLKI_DIV
        for clkop_div in range(1, DIV_MAX + 1):
            cfg = PLLConfig(f_in, clki_div, clkfb_div, clkop_div)
            if not (F_VCO[0] <= cfg.f_vco <= F_VCO[1] and F_OUT[0] <= cfg.f_out <= F_OUT[1]):
                continue
            key = (abs(cfg.f_out - f_out), abs(cfg.f_vco - 600 * _MHZ), clki_div)
            if best_key is None or key < best_key:
                best, best_key = cfg, key
    if best is None:
        raise BoardError(f"no ECP5 PLL setting makes {f_out / _MHZ:g} MHz from {f_in / _MHZ:g} MHz")
    return best


class ECP5PLL(wiring.Component):
    """One EHXPLLL, CLKOP only, feedback from CLKOP (see the module docstring).

    Parameters (keyword-only)
    ----------
    config : PLLConfig
        From :func:`ecp5_pll_config`.

    Ports
    -----
    clk_in : In(1)
        The reference clock (a clock input pin).
    clk_out : Out(1)
        ``config.f_out``; nextpnr derives its timing constraint from the
        input's (``FREQUENCY PORT`` in the LPF) through the divider settings.
    locked : Out(1)
        High once the PLL has locked; the board holds its logic in reset until then.
    """

    def __init__(self, *, config: PLLConfig) -> None:
        if not isinstance(config, PLLConfig):
            raise BoardError(f"config must be a PLLConfig (ecp5_pll_config()), not {config!r}")
        self.config = config
        super().__init__({"clk_in": In(1), "clk_out": Out(1), "locked": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        m.submodules.pll = Instance(
            "EHXPLLL",
            # loop filter settings the vendor tools use for this feedback mode
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            a_FREQUENCY_PIN_CLKI=f"{c.f_in / _MHZ:g}", a_FREQUENCY_PIN_CLKOP=f"{c.f_out / _MHZ:.6g}",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=c.clki_div, p_CLKFB_DIV=c.clkfb_div, p_FEEDBK_PATH="CLKOP",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=c.clkop_div, p_CLKOP_CPHASE=c.clkop_div - 1, p_CLKOP_FPHASE=0,
            i_CLKI=self.clk_in, i_CLKFB=self.clk_out, o_CLKOP=self.clk_out, o_LOCK=self.locked,
            i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
            i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
        )
        return m
