"""The Radiona ULX3S board top: :class:`~hwgen.boards.top.BoardTop` for the ULX3S entries of the board table."""

from __future__ import annotations

from hwgen.boards.boards import Board, get_board
from hwgen.boards.top import ACCELERATOR_MODULE, DEFAULT_FRAME_TIMEOUT_S, BoardTop
from hwgen.errors import BoardError

__all__ = ["ACCELERATOR_MODULE", "DEFAULT_FRAME_TIMEOUT_S", "LED_COUNT", "ULX3STop"]

#: The ULX3S's LEDs: the class index on LED0-LED6, LED7 toggles with every reply.
LED_COUNT = 8


class ULX3STop(BoardTop):
    """:class:`BoardTop` on a ULX3S (``board`` must be one): ports clk25, btn_pwr_n, uart_rx, uart_tx, led[8], wifi_gpio0."""

    def __init__(self, *, board: Board | str, **kwargs) -> None:
        if not get_board(board).name.startswith("ulx3s"):
            raise BoardError(f"ULX3STop wraps ULX3S boards, not {get_board(board).name}")
        super().__init__(board=board, **kwargs)
