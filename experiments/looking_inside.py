"""Draws every figure of the README's "Looking inside" section into one folder.

Command (from the repository root; about 2 minutes on 2 CPU cores, most of it compiling and
training LeNet5 for 10 epochs on the 8x8 digits)::

    python experiments/looking_inside.py --out docs/figures

Each figure is one ``cnnjax viz ...`` command, printed before it runs, so any single figure
can be redrawn on its own. The script ends by printing the README section (Markdown) with
those commands and the measured numbers. Expected results:

* ``classic_kernels.png``: the lectures' blur / Laplacian / sharpen / vertical-edge kernels on
  a crop of scikit-learn's ``china.jpg``.
* ``filters_lenet5_digits.png``, ``feature_maps_lenet5_digits.png``: LeNet5 (max pooling)
  trained 10 epochs on the embedded digits (checkpointed in ``--workdir``; a second run loads
  it instead of retraining): test accuracy 97.78%.
* ``receptive_field_lenet5.png``: 5, 6, 14, 16 pixels after conv1, pool1, conv2, pool2 (the
  16x16 of ``cnnjax summary lenet5``); ``receptive_field_resnet20.png``: 81 pixels after the
  last conv, well beyond the 32x32 input.
* ``pooling_information.png`` (two sample photos, grey, 240x360; nearest upsampling; Lp with
  p=2), normalised reconstruction error ``||x - x_hat|| / ||x||``::

      kept   spectral   max      avg      lp
      1/4    0.0559     0.1167   0.0723   0.0731
      1/9    0.0806     0.1809   0.0984   0.0999
      1/16   0.1002     0.2310   0.1175   0.1196
      1/25   0.1151     0.2653   0.1293   0.1318
      1/36   0.1271     0.3019   0.1422   0.1453
      1/64   0.1469     0.3544   0.1602   0.1641

  Spectral pooling loses the least at every fraction kept and max pooling the most
  (Rippel et al. 2015, Fig. 4).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
import time
from pathlib import Path


def _figures(out: Path, workdir: Path, epochs: int) -> list[tuple[str, list[str], str]]:
    train = ["--model", "lenet5", "--pool", "max", "--dataset", "digits", "--epochs",
             str(epochs), "--workdir", str(workdir / "lenet5_digits")]
    return [
        ("Hand-made kernels", ["kernels", "--out", str(out / "classic_kernels.png")],
         "The lectures' 3x3 kernels (lectures): box blur, Laplacian edge detection, sharpening "
         "and the vertical-edge detector, applied with `cnnjax.conv` (replicate padding) to "
         "scikit-learn's sample photo."),
        ("Learned filters", ["filters", *train, "--out", str(out / "filters_lenet5_digits.png")],
         "The 20 first-layer 5x5 filters of LeNet5 trained on the 8x8 digits, each scaled to "
         "its own range (as in the lectures' AlexNet figure)."),
        ("Feature maps", ["feature-maps", *train, "--index", "0",
                          "--out", str(out / "feature_maps_lenet5_digits.png")],
         "One test digit through the same LeNet5: the first 8 channels after each conv and "
         "pooling stage."),
        ("Receptive fields", ["receptive-field", "--model", "lenet5", "--input-shape", "28,28,1",
                              "--out", str(out / "receptive_field_lenet5.png")],
         "Receptive field per layer of LeNet5 at 28x28 and the input region the centre unit of "
         "each layer sees (`cnnjax.receptive_field` on the layers found by running the model)."),
        ("", ["receptive-field", "--model", "resnet20", "--input-shape", "32,32,3",
              "--out", str(out / "receptive_field_resnet20.png")],
         "ResNet-20 on CIFAR-sized input: the field passes the 32x32 image in the second "
         "stage and reaches 81 pixels after the last conv (residual shortcuts are followed; "
         "the deepest path counts)."),
        ("What pooling keeps", ["pooling-information", "--out",
                                str(out / "pooling_information.png")],
         "Rippel et al. 2015, Fig. 4: pool the two sample photos (grey, 240x360) to 1/k^2 of "
         "their values, bring them back to full size (inverse DFT of the zero-padded spectrum "
         "for spectral pooling, nearest upsampling for the others) and measure "
         "||x - x_hat|| / ||x||."),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures", help="figure folder")
    parser.add_argument("--workdir", default="runs/looking_inside",
                        help="checkpoints of the trained LeNet5")
    parser.add_argument("--epochs", type=int, default=10, help="LeNet5 training epochs")
    args = parser.parse_args(argv)

    from cnnjax.viz import cli

    out, workdir = Path(args.out), Path(args.workdir)
    sections = []
    for title, fig_argv, caption in _figures(out, workdir, args.epochs):
        command = "cnnjax viz " + " ".join(shlex.quote(a) for a in fig_argv)
        print(f"$ {command}", flush=True)
        start = time.perf_counter()
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            status = cli.main(fig_argv)
        text = captured.getvalue()
        print(text, end="")
        print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)
        if status != 0:
            return status
        png = Path(fig_argv[fig_argv.index("--out") + 1])
        sections.append((title, command, caption, png, text))

    print("\n---- README section ----\n")
    print("## Looking inside\n")
    print(f"Every figure below is drawn by one command (all of them: "
          f"`python experiments/looking_inside.py --out {out}`).\n")
    for title, command, caption, png, text in sections:
        if title:
            print(f"### {title}\n")
        print(f"```\n{command}\n```\n")
        print(f"![{png.stem}]({png.as_posix()})\n")
        print(f"{caption}\n")
        table = [line for line in text.splitlines() if line.strip() and not line.endswith(".png")]
        if command.startswith("cnnjax viz pooling-information") and table:
            print("| kept | " + " | ".join(table[0].split()[1:]) + " |")
            print("|---" * len(table[0].split()) + "|")
            for line in table[1:]:
                print("| " + " | ".join(line.split()) + " |")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
