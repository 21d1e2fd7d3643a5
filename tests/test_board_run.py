"""``hwgen run`` against a fake board (tests/fake_board.py: the protocol answered via the golden model).

The build folder is the shipped TFC (MNIST) built with ``--fps 100000``;
images are real MNIST test digits saved as PNG / .npy, plus pictures that
need converting. Checked: class, scores and agreement printed; retries after
a lost byte; and every error path (no port, no reply, another design, wrong
image shape, corrupted reply, a board that disagrees with the golden model).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from fake_board import FakeBoard
from PIL import Image

from hwgen.boards import host
from hwgen.boards.generate import read_ident
from hwgen.boards.protocol import Ident
from hwgen.cli import main
from hwgen.compile.artifact import load_network
from hwgen.compile.golden import run_network
from hwgen.errors import BoardError

REPO = Path(__file__).resolve().parent.parent
TFC = REPO / "models" / "tfc_mnist.ckpt"


@pytest.fixture(scope="module")
def tfc_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hwgen.hw.builder import BuildOptions, build

    if not TFC.is_file():
        pytest.skip(f"{TFC} is not in the repository")
    out = tmp_path_factory.mktemp("run") / "tfc"
    build(TFC, out, BuildOptions(fps=100_000), log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from hwgen.data.datasets import load_dataset

    data = load_dataset("mnist", mnist_dir)
    return data.test_images[:8].numpy(), data.test_labels[:8].numpy()


@pytest.fixture
def board(tfc_build: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a FakeBoard for the TFC build as the serial port; returns a function to reconfigure it."""
    net = load_network(tfc_build / "net.hwir")
    state = {"board": FakeBoard(net, read_ident(tfc_build))}

    def fake_open(port: str, baud: int, timeout_s: float) -> FakeBoard:
        state["board"].opened_with = (port, baud, timeout_s)
        return state["board"]

    def configure(**kwargs) -> FakeBoard:
        ident = kwargs.pop("ident", read_ident(tfc_build))
        state["board"] = FakeBoard(net, ident, **kwargs)
        return state["board"]

    monkeypatch.setattr(host, "open_port", fake_open)
    configure.current = lambda: state["board"]
    return configure


def _png(path: Path, image_chw: np.ndarray) -> Path:
    Image.fromarray(image_chw[0]).save(path)
    return path


def test_run_prints_class_scores_and_agreement(tfc_build, board, digits, tmp_path, capsys) -> None:
    images, _ = digits
    golden = run_network(load_network(tfc_build / "net.hwir"), images)
    for k in range(3):
        png = _png(tmp_path / f"digit{k}.png", images[k])
        assert main(["run", "--port", "/dev/ttyFAKE", str(png), "--build", str(tfc_build), "--timeout", "0.5"]) == 0
        out = capsys.readouterr().out
        assert f"class {golden.predictions[k]}  (" in out
        assert f"scores {golden.scores[k].tolist()}" in out
        assert "all 10 scores equal: board agrees" in out
        assert "1x28x28, 10 classes, design" in out and "= " + str(tfc_build) in out
        fake = board.current()
        assert np.array_equal(fake.frames[-1], images[k])  # the board got exactly the test image
        assert fake.opened_with == ("/dev/ttyFAKE", 1_000_000, 0.5) and fake.closed


def test_run_without_build_folder(board, digits, tmp_path, capsys) -> None:
    images, _ = digits
    np.save(tmp_path / "digit.npy", images[0])
    assert main(["run", "--port", "p", str(tmp_path / "digit.npy"), "--baud", "115200"]) == 0
    out = capsys.readouterr().out
    assert "not compared with the golden model" in out and "1x28x28 as given" in out
    assert board.current().opened_with[1] == 115200


def test_run_converts_and_resizes_a_picture(tfc_build, board, digits, tmp_path, capsys) -> None:
    images, _ = digits
    big = Image.fromarray(images[1][0]).resize((112, 84)).convert("RGB")
    big.save(tmp_path / "photo.jpg")
    assert main(["run", "--port", "p", str(tmp_path / "photo.jpg"), "--build", str(tfc_build), "--invert"]) == 0
    out = capsys.readouterr().out
    assert "converted RGB to grayscale (luma); resized 112x84 -> 28x28 (bilinear, aspect ratio not kept); " \
           "inverted (255 - x)" in out
    assert "board agrees" in out
    sent = board.current().frames[-1]
    assert sent.shape == (1, 28, 28) and sent.dtype == np.uint8


def test_run_retries_after_a_lost_byte(tfc_build, board, digits, tmp_path, capsys) -> None:
    images, _ = digits
    fake = board(lose=frozenset({1 + 1 + 300}))  # written bytes: identify, sync byte, then the image: lose pixel 300
    png = _png(tmp_path / "d.png", images[2])
    assert main(["run", "--port", "p", str(png), "--build", str(tfc_build), "--timeout", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "2 attempts" in out and "board agrees" in out
    assert len(fake.frames) == 1  # the short frame never reached the accelerator


def test_run_missing_port(tfc_build, digits, tmp_path, capsys) -> None:
    png = _png(tmp_path / "d.png", digits[0][0])
    assert main(["run", "--port", "/dev/ttyDOESNOTEXIST", str(png), "--build", str(tfc_build)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: cannot open serial port /dev/ttyDOESNOTEXIST at 1,000,000 baud") \
        and "Traceback" not in err


def test_run_no_reply(tfc_build, board, digits, tmp_path, capsys) -> None:
    board(silent=True)
    png = _png(tmp_path / "d.png", digits[0][0])
    assert main(["run", "--port", "/dev/ttyX", str(png), "--build", str(tfc_build), "--timeout", "0.05"]) == 2
    err = capsys.readouterr().err
    assert "hwgen: error: no identify reply from the board on /dev/ttyX within 0.05 s (got 0 of 16 bytes, " \
           "3 attempts): is the bitstream loaded" in err


def test_run_no_classify_reply(tfc_build, board, digits, tmp_path, capsys) -> None:
    fake = board(answer_classify=False)
    png = _png(tmp_path / "d.png", digits[0][0])
    assert main(["run", "--port", "p", str(png), "--build", str(tfc_build), "--retries", "1"]) == 2
    assert "no classify reply from the board on p within 2 s (got 0 of 44 bytes, 2 attempts)" \
        in capsys.readouterr().err
    assert len(fake.frames) == 2


def test_run_board_with_another_design(tfc_build, board, digits, tmp_path, capsys) -> None:
    board(ident=dataclasses.replace(read_ident(tfc_build), design=b"\0\0\0\0"))
    png = _png(tmp_path / "d.png", digits[0][0])
    assert main(["run", "--port", "p", str(png), "--build", str(tfc_build)]) == 2
    err = capsys.readouterr().err
    assert "runs another design: input 1x28x28, 10 classes, design id 00000000" in err


@pytest.mark.parametrize("make, match", [
    (lambda d: np.save(d / "x.npy", np.zeros((1, 20, 20), np.uint8)),
     r"has shape \(1, 20, 20\), but the accelerator takes \(C, H, W\) = \(1, 28, 28\)"),
    (lambda d: np.save(d / "x.npy", np.zeros((1, 28, 28), np.float32)), "holds float32 values"),
    (lambda d: Image.new("L", (32, 32)).save(d / "x.png"), r"is 32x32 pixels, but the accelerator takes 28x28"),
    (lambda d: (d / "x.png").write_bytes(b"not a picture"), "is not an image Pillow can read"),
])
def test_run_wrong_image(tfc_build, board, tmp_path, capsys, make, match) -> None:
    make(tmp_path)
    path = next(tmp_path.glob("x.*"))
    assert main(["run", "--port", "p", str(path), "--build", str(tfc_build), "--no-resize"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: ")
    assert re.search(match, err), err


def test_run_image_with_channels_a_picture_cannot_give(board, tmp_path, capsys) -> None:
    board(ident=Ident(2, 8, 8, 4, b"abcd"))
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    with pytest.raises(BoardError, match="takes 2-channel images"):
        host.run_on_board("p", tmp_path / "x.png")


def test_run_missing_image(tfc_build, board, tmp_path, capsys) -> None:
    assert main(["run", "--port", "p", str(tmp_path / "nope.png"), "--build", str(tfc_build)]) == 2
    assert f"hwgen: error: image {tmp_path / 'nope.png'} does not exist" in capsys.readouterr().err


def test_run_corrupted_reply_is_retried_then_refused(tfc_build, board, digits, tmp_path, capsys) -> None:
    png = _png(tmp_path / "d.png", digits[0][0])
    board(corrupt_replies=1)
    assert main(["run", "--port", "p", str(png), "--build", str(tfc_build)]) == 0
    assert "2 attempts" in capsys.readouterr().out
    board(corrupt_replies=99)
    assert main(["run", "--port", "p", str(png), "--build", str(tfc_build)]) == 2
    assert "but the argmax of its scores" in capsys.readouterr().err


def test_run_reports_disagreement_with_the_golden_model(tfc_build, board, digits, tmp_path, capsys) -> None:
    board(score_offset=2)
    png = _png(tmp_path / "d.png", digits[0][0])
    assert main(["run", "--port", "p", str(png), "--build", str(tfc_build)]) == 1
    out = capsys.readouterr().out
    assert "board DISAGREES (class same, scores differ for class(es) 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in out


def test_link_retries_validation() -> None:
    with pytest.raises(BoardError, match="retries"):
        host.BoardLink(object(), retries=-1)
