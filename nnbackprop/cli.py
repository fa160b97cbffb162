"""The ``nnbackprop`` command (also ``python -m nnbackprop``).

    nnbackprop train    [--data digits] [--hidden 128,64] ... [--out model.npz] [--plot curve.png]
    nnbackprop evaluate MODEL --data DATA [--split all|test]
    nnbackprop predict  MODEL INPUT.csv|.npz [--out preds.csv]
    nnbackprop export   MODEL.npz MODEL.onnx   the network as an ONNX graph (extra "onnx")
    nnbackprop bench    one training step timed on every backend found
    nnbackprop info     versions, backends, devices

A user error (missing file, bad CSV, wrong feature count, unknown option value)
is one line on stderr, ``nnbackprop: error: ...``, and exit status 2 (bad
command line) or 1 (anything else); never a traceback. Set the environment
variable NNBACKPROP_TRACEBACK=1 to see the traceback of an unexpected error.
Output paths are checked before any work; missing parent directories are made.
A closed output pipe (``nnbackprop info | head -1``) ends quietly with status 141.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import _cli_model as cm
from . import _compat, datasets, sysinfo
from .checkpoint import atomic_write
from .model import load

EPILOG = "Defaults train a 64-128-64-10 ReLU network on the digits in a few seconds."


class UsageError(Exception):
    """A bad command line: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _number(kind: type, ok: Callable, what: str) -> Callable[[str], int | float]:
    """An argparse type: ``kind(text)`` that passes ``ok``, else a one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


COUNT = _number(int, lambda v: v >= 1, "a positive integer")
SEED = _number(int, lambda v: v >= 0, "a non-negative integer")
RATE = _number(float, lambda v: 0 < v < math.inf, "a positive number")
SHARE = _number(float, lambda v: 0 <= v < 1, "in [0, 1)")
DTYPES = ("float16", "float32", "float64")


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nnbackprop", description=__doc__.splitlines()[0], epilog=EPILOG)
    sub = p.add_subparsers(dest="command", metavar="{train,evaluate,predict,export,bench,info}")
    sub.required = True

    t = sub.add_parser("train", help="train a network on a data set, report test scores, save it")
    _data_args(t, default="digits")
    t.add_argument("--hidden", default="128,64", help="hidden layer sizes, e.g. 128,64 ('' for none)")
    t.add_argument("--activation", default="relu", help="hidden activation (relu, tanh, sigmoid, ...)")
    t.add_argument("--norm", default="none", choices=["none", "layer", "batch"],
                   help="a LayerNorm or BatchNorm after each hidden layer (default none)")
    t.add_argument("--dropout", type=SHARE, default=0.0, metavar="P",
                   help="dropout probability after each hidden layer, in [0, 1) (default 0: none)")
    t.add_argument("--loss", default="auto",
                   choices=["auto", "softmax_cross_entropy", "cross_entropy", "mse", "huber", "l1", "pinball"],
                   help="auto: softmax cross-entropy for a class target, else MSE; huber, l1 and pinball "
                        "(quantile regression) are regression losses on the standardised target")
    t.add_argument("--quantile", type=_number(float, lambda v: 0 < v < 1, "in (0, 1)"), default=None,
                   help="the quantile --loss pinball predicts (default 0.5)")
    t.add_argument("--dp-clip", type=RATE, default=None, metavar="C",
                   help="DP-SGD: clip each example's gradient to norm C (with --dp-noise)")
    t.add_argument("--dp-noise", type=_number(float, lambda v: 0 <= v < math.inf, "a number >= 0"),
                   default=None, metavar="SIGMA",
                   help="DP-SGD: Gaussian noise multiplier sigma (drawn from fresh entropy, never from --seed, "
                        "which the checkpoint records)")
    t.add_argument("--dp-delta", type=_number(float, lambda v: 0 < v < 1, "in (0, 1)"), default=None,
                   metavar="DELTA", help="DP-SGD: report epsilon at this delta (needs dp-accounting)")
    t.add_argument("--optimizer", default="adam", help="sgd, adagrad, rmsprop, adam, adamw")
    t.add_argument("--lr", type=RATE, default=1e-3, help="learning rate (> 0)")
    t.add_argument("--epochs", type=COUNT, default=30)
    t.add_argument("--batch-size", type=COUNT, default=64)
    t.add_argument("--validation-split", type=SHARE, default=0.0,
                   help="share of the training rows held out for val_loss, drawn at random "
                        "(per class for a class target; default 0)")
    _backend_args(t, dtype=True)
    t.add_argument("--seed", type=SEED, default=0, help="weights, split and shuffling")
    t.add_argument("--out", default="model.npz", help="checkpoint to write (.npz)")
    t.add_argument("--plot", default=None, metavar="IMAGE",
                   help="write the training curve here (.png, .pdf, .svg, ...)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of the launcher it runs under "
                        "(mpiexec -n 4 nnbackprop train --distributed, or torchrun): each rank trains on "
                        "its share of the training rows, --batch-size is per rank, rank 0 prints and saves")

    e = sub.add_parser("evaluate", help="scores of a saved model on a data set")
    e.add_argument("model", help="checkpoint written by train")
    _data_args(e, default=None)
    e.add_argument("--split", choices=["all", "test"], default="all",
                   help="all rows, or the test rows train held out (the same data only)")
    _backend_args(e)

    r = sub.add_parser("predict", help="predictions of a saved model for the rows of a file")
    r.add_argument("model", help="checkpoint written by train")
    r.add_argument("input", help="INPUT.csv (header row) or INPUT.npz (array X)")
    r.add_argument("--out", default=None, help="preds.csv or preds.npz (default: CSV on stdout)")
    _backend_args(r)

    x = sub.add_parser("export", help="write a saved model as an ONNX graph (needs onnx installed)")
    x.add_argument("model", help="checkpoint written by train (.npz)")
    x.add_argument("out", help="ONNX file to write (.onnx)")

    b = sub.add_parser("bench", help="time one training step on every backend found")
    b.add_argument("--batch-size", type=COUNT, default=256)
    b.add_argument("--hidden", type=COUNT, default=256, help="width of the two hidden layers")
    b.add_argument("--features", type=COUNT, default=64)
    b.add_argument("--steps", type=COUNT, default=20)
    b.add_argument("--dtype", default="float32", choices=DTYPES)

    sub.add_parser("info", help="versions, backends found, devices")
    return p


def _data_args(p, default):
    p.add_argument("--data", default=default, required=default is None,
                   help="digits, xor, iris, diabetes, PATH.csv or PATH.npz")
    p.add_argument("--target", default=None, help="CSV target column (default: the last)")


def _backend_args(p, dtype=False):
    p.add_argument("--backend", default="auto", choices=["auto", *sysinfo.KNOWN],
                   help="auto: CuPy when a GPU is usable, else NumPy")
    if dtype:  # evaluate and predict use the dtype the checkpoint was saved in
        p.add_argument("--dtype", default="float32", choices=DTYPES)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    try:
        args = make_parser().parse_args(argv)
        status = COMMANDS[args.command](args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        return _broken_pipe()
    except UsageError as exc:
        return _fail(exc, 2)
    except KeyboardInterrupt:
        print("nnbackprop: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, FloatingPointError, KeyError) as exc:
        if os.environ.get("NNBACKPROP_TRACEBACK"):
            raise
        return _fail(exc, 1)
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("NNBACKPROP_TRACEBACK"):
            raise
        return _fail(f"internal error ({type(exc).__name__}: {exc}); set NNBACKPROP_TRACEBACK=1 "
                     f"for the traceback and please report it", 1)


def _fail(exc, status: int) -> int:
    msg = str(exc)
    if isinstance(exc, KeyError):
        msg = str(exc.args[0]) if exc.args else "missing key"
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}"
    print(f"nnbackprop: error: {' '.join(msg.split())}", file=sys.stderr)
    return status


def _broken_pipe() -> int:
    """The reader of stdout went away: no message, stdout to devnull, 141 (128 + SIGPIPE)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def _check_output(flag: str, path: str) -> None:
    """Refuse, before any work, an output path that cannot be written: a directory,
    or a place where no file can be made. Missing parent directories are fine
    (they are made when the file is written)."""
    p = Path(path)
    if path.endswith(("/", os.sep)) or p.is_dir():
        raise UsageError(f"argument {flag}: {path} is a directory")
    base = next(d for d in [p.parent.absolute(), *p.parent.absolute().parents] if d.exists())
    if not base.is_dir():
        raise UsageError(f"argument {flag}: cannot write {path}: {base} is not a directory")
    try:
        tempfile.TemporaryFile(dir=base).close()
    except OSError as exc:
        raise UsageError(f"argument {flag}: cannot write {path}: {exc.strerror or exc}") from None


def _not_an_input(flag: str, out: str, inputs: Sequence[str]) -> None:
    """Refuse an output path that is, or resolves to (links, ``..``, hard links), one
    of the command's input files (or another output): it would be overwritten."""
    real = os.path.realpath(out)
    for name in inputs:
        if name is None:
            continue
        same = os.path.realpath(name) == real
        if not same and os.path.exists(out) and os.path.exists(name):
            try:
                same = os.path.samefile(name, out)
            except OSError:
                pass
        if same:
            raise UsageError(f"argument {flag}: {out} is the same file as {name}, which this command "
                             f"reads or writes; writing it would destroy that, pick another path")


def _backend(name: str, say=print) -> str:
    """The backend to use; ``say`` reports the choice (predict to stdout stays pure CSV)."""
    if name == "auto":
        name, why = sysinfo.pick_auto()
        say(f"backend: {name} (auto: {why})")
        return name
    reason = sysinfo.unavailable(name)
    if reason is not None:
        raise UsageError(f"--backend {name} is not usable here: {reason}")
    say(f"backend: {name}")
    return name


def _move(xp, a: np.ndarray, dtype, device):
    return _compat.from_host(xp, a, dtype, device)


def cmd_train(args) -> int:
    if not getattr(args, "distributed", False):
        return _train(args, None)
    from . import distributed

    comm = distributed.get_communicator("auto")
    if comm.rank == 0:
        return _train(args, comm)
    with contextlib.redirect_stdout(io.StringIO()):  # rank 0 speaks for all
        return _train(args, comm)


def _train(args, comm) -> int:
    from . import activations, losses, optim, training
    from ._mlp import mlp

    if not args.out.endswith(".npz"):
        raise UsageError(f"argument --out: the checkpoint must be a .npz file, got {args.out!r}")
    _check_output("--out", args.out)
    _not_an_input("--out", args.out, [args.data])
    hidden = cm.parse_hidden(args.hidden)
    if args.plot:
        from . import plot

        try:
            if not Path(args.plot).suffix:
                raise ValueError(f"{args.plot}: no suffix to name the image format (.png, .pdf, .svg, ...)")
            plot.format_of(args.plot)
        except ValueError as exc:
            raise UsageError(f"argument --plot: {exc}") from None
        _check_output("--plot", args.plot)
        _not_an_input("--plot", args.plot, [args.data, args.out])
    activations.get(args.activation)
    optimizer = optim.get(args.optimizer, lr=args.lr)
    dp = _dp_args(args)
    name = _backend(args.backend)
    table = datasets.load(args.data, args.target)
    datasets.check_finite(table.X, table.name)
    classify = datasets.is_classification(table.y) if args.loss == "auto" else args.loss not in REGRESSION
    if not classify and not np.issubdtype(table.y.dtype, np.number):
        raise ValueError(f"--loss {'mse' if args.loss == 'auto' else args.loss} needs a numeric target; "
                         f"{table.target!r} holds text")
    n = table.X.shape[0]
    labels, classes = datasets.encode_labels(table.y) if classify else (None, None)
    if classify:
        datasets.check_classes(labels, classes, table.target)
    tr, te = datasets.split(n, datasets.TEST_SHARE, args.seed, labels)
    va = np.arange(0)
    if args.validation_split:
        keep, drawn = datasets.draw(tr.size, args.validation_split, np.random.default_rng([args.seed, 1]),
                                    None if labels is None else labels[tr])
        if drawn.size == 0:
            raise UsageError(f"argument --validation-split: {args.validation_split} of {tr.size} training "
                             f"rows leaves no validation rows")
        tr, va = tr[keep], tr[drawn]
    mu, s = cm.standardiser(table.X[tr])
    meta = {"task": "classification" if classify else "regression", "features": table.features,
            "named": table.named, "target": table.target, "data": args.data,
            "split": {"seed": args.seed, "test_share": datasets.TEST_SHARE, "stratified": classify,
                      "fingerprint": datasets.fingerprint(table)}}
    if classify:
        meta["classes"] = classes
        n_out, y_shift, y_scale = len(classes), 0.0, 1.0
        loss, metrics = losses.SoftmaxCrossEntropy(), ["accuracy"]
        y_fit = labels
    else:
        y = table.y.astype(np.float64)
        y_shift, y_scale = float(y[tr].mean()), float(y[tr].std()) or 1.0
        n_out, metrics = 1, []
        loss = losses.get({"name": "mse" if args.loss == "auto" else args.loss,
                           **({"quantile": args.quantile} if args.quantile is not None else {})})
        y_fit = ((y - y_shift) / y_scale)[:, None]

    model = mlp([table.X.shape[1], *hidden, n_out], args.activation, xp=name, dtype=args.dtype,
                seed=args.seed, norm=None if args.norm == "none" else args.norm, dropout=args.dropout)
    # a last batch too small for BatchNorm's statistics (1 row) is skipped each epoch
    drop_last = 0 < len(tr) % args.batch_size < model.min_rows and len(tr) > args.batch_size
    xp, dev, dt = model.xp, model.device, model.dtype
    ydt = None if classify else dt

    def on_device(rows):  # standardised (X, T) of these rows
        return _move(xp, (table.X[rows] - mu) / s, dt, dev), _move(xp, y_fit[rows], ydt, dev)

    print(f"data: {table.name}, {n} rows x {table.X.shape[1]} features, {len(tr)} train / "
          + (f"{len(va)} validation / " if va.size else "") + f"{len(te)} test; "
          + (f"{n_out} classes" if classify else "regression"))
    print("model: " + "-".join(str(k) for k in [table.X.shape[1], *hidden, n_out])
          + f" {args.activation}"
          + (f", {args.norm} norm" if args.norm != "none" else "")
          + (f", dropout {args.dropout:g}" if args.dropout else "")
          + f", {loss.name}, {args.optimizer} lr={args.lr:g}, batch {args.batch_size}, {args.dtype}")
    start = time.perf_counter()
    if comm is not None:  # this rank's share of the training and validation rows
        if 0 < va.size < comm.size:
            raise UsageError(f"argument --validation-split: {va.size} validation rows cannot be shared by "
                             f"{comm.size} ranks; hold out at least one row per rank")
        print(f"data-parallel: {comm.size} ranks, batch {args.batch_size} per rank")
        tr, va = tr[comm.rank::comm.size], va[comm.rank::comm.size]
    hist = training.fit(model, *on_device(tr), loss=loss, optimizer=optimizer, epochs=args.epochs,
                        batch_size=args.batch_size, drop_last=drop_last, seed=args.seed, metrics=metrics,
                        progress=not args.no_progress and (comm is None or comm.rank == 0),
                        validation_data=on_device(va) if va.size else None, dp=dp, comm=comm)
    took = time.perf_counter() - start
    if dp is not None:
        eps = f", epsilon {hist['epsilon'][-1]:.4g} at delta {dp.delta:g}" if dp.delta is not None else ""
        print(f"DP-SGD: clip {dp.clip:g}, noise {dp.noise:g}, {dp.steps} steps{eps}")
    last = "  ".join(f"{k} {v[-1]:.4g}" for k, v in hist.history.items())
    print(f"trained {len(hist.epoch)} epochs in {took:.1f} s: {last}")
    cm.fold(model, mu, s, y_shift, y_scale)
    _report(model, table.X[te], labels[te] if classify else table.y[te].astype(np.float64)[:, None],
            ydt, classify, "test")
    model.optimizer = None  # its moments belong to the standardised weights
    if comm is not None and comm.rank != 0:
        comm.barrier()  # rank 0 writes the one checkpoint
        return 0
    try:
        path = cm.save(model, args.out, meta)
    finally:  # the others wait for it, whatever happened
        if comm is not None:
            comm.barrier()
    print(f"saved {path}")
    if args.plot:
        plot.history(hist, path=args.plot, title=f"{table.name}: {loss.name}")
        print(f"plotted {args.plot}")
    return 0


REGRESSION = ("mse", "huber", "l1", "pinball")


def _dp_args(args):
    """The DPSGD the --dp-* flags ask for, or None; checked before any work."""
    given = [f for f in ("dp_clip", "dp_noise", "dp_delta") if getattr(args, f) is not None]
    if args.quantile is not None and args.loss != "pinball":
        raise UsageError("argument --quantile: only with --loss pinball")
    if not given:
        return None
    if args.dp_clip is None or args.dp_noise is None:
        raise UsageError("DP-SGD needs both --dp-clip and --dp-noise")
    from .privacy import DPSGD

    try:
        # not seed=args.seed: the checkpoint records that seed, and noise drawn from it again could be subtracted
        return DPSGD(args.dp_clip, args.dp_noise, delta=args.dp_delta, seed=None)
    except ImportError as exc:
        raise UsageError(f"argument --dp-delta: {exc}") from None


def _report(model, X, T, t_dtype, classify: bool, what: str) -> dict:
    """Print and return the scores of ``model`` on host rows X, T (T moved in ``t_dtype``):
    block by block to the device, each block's means weighted by its share of the rows,
    so the memory does not grow with the number of rows."""
    from . import training

    xp, dev, n = model.xp, model.device, X.shape[0]
    rows = training.block_rows(model)
    res: dict = {}
    for a in range(0, n, rows):
        Xb, Tb = _move(xp, X[a:a + rows], model.dtype, dev), _move(xp, T[a:a + rows], t_dtype, dev)
        if classify:
            got = training.evaluate(model, Xb, Tb, loss=model.loss, metrics=["accuracy"])
        else:
            got = training.evaluate(model, Xb, Tb, metrics=["mse", "mae"])
        share = Xb.shape[0] / n
        res = {k: res.get(k, 0.0) + v * share for k, v in got.items()}
    if classify:
        print(f"{what}: accuracy {res['accuracy']:.4f}  loss {res['loss']:.4f}  ({n} rows)")
    else:
        print(f"{what}: MSE {res['mse']:.5g}  MAE {res['mae']:.5g}  ({n} rows)")
    return res


def _load(path: str, backend: str, say=print):
    """The model (in the dtype it was saved in) and its command-line metadata."""
    if os.path.exists(path):  # unreadable or a directory: say so, not "corrupted"
        open(path, "rb").close()
    model = load(path, xp=_backend(backend, say))
    return model, cm.read_meta(path)


def _check_features(model, table) -> None:
    if table.X.shape[1] != model.n_in:
        raise ValueError(f"{table.name} has {table.X.shape[1]} feature columns but the model expects "
                         f"{model.n_in}")
    datasets.check_finite(table.X, table.name)


def _test_rows(table, meta: dict) -> np.ndarray:
    """The rows train held out for testing, when ``table`` is the data it trained on."""
    sp = meta.get("split")
    if sp is None:
        raise UsageError("--split test: this checkpoint does not record its train/test split (it was saved "
                         "by an older nnbackprop or from Python); use --split all")
    if datasets.fingerprint(table) != sp["fingerprint"]:
        raise UsageError(f"--split test: {table.name} is not the data this model was trained on "
                         f"({meta.get('data')}), so its held-out rows are unknown; use --split all")
    strata = datasets.encode_labels(table.y)[0] if sp["stratified"] else None
    return datasets.split(table.X.shape[0], sp["test_share"], sp["seed"], strata)[1]


def cmd_evaluate(args) -> int:
    model, meta = _load(args.model, args.backend)
    target = args.target if args.data in datasets.BUILTIN else args.target or meta.get("target")
    table = datasets.load(args.data, target, features=cm.feature_names(meta))
    _check_features(model, table)
    classify = cm.is_classifier(model, meta)
    rows = _test_rows(table, meta) if args.split == "test" else slice(None)
    if classify:
        T, t_dtype = cm.label_indices(table.y[rows], meta.get("classes"), model.n_out), None
        if model.loss is None or model.loss.name != "softmax_cross_entropy":
            from .losses import SoftmaxCrossEntropy

            model.loss = SoftmaxCrossEntropy()
    else:
        if not np.issubdtype(table.y.dtype, np.number):
            raise ValueError(f"{table.name}: the target holds text but the model is a regression model")
        y = table.y[rows].astype(np.float64)
        T, t_dtype = y.reshape(y.shape[0], -1), model.dtype
        if T.shape[1] != model.n_out:
            raise ValueError(f"the target has {T.shape[1]} columns but the model gives {model.n_out}")
    _report(model, table.X[rows], T, t_dtype, classify, f"{table.name} ({args.split})")
    return 0


def cmd_predict(args) -> int:
    if args.out is not None:
        _check_output("--out", args.out)
        _not_an_input("--out", args.out, [args.model, args.input])
    say = print if args.out is not None else (lambda *a: None)
    model, meta = _load(args.model, args.backend, say)
    table = datasets.load(args.input, meta.get("target"), need_target=False, features=cm.feature_names(meta))
    _check_features(model, table)
    from . import training

    rows = training.block_rows(model)  # block by block to the device and back: memory independent of N
    pred = [cm.decode(model, training.predict(model, _move(model.xp, table.X[a:a + rows], model.dtype,
                                                           model.device)), meta)
            for a in range(0, max(table.X.shape[0], 1), rows)]
    _write_predictions(np.concatenate(pred), args.out)
    return 0


def _write_predictions(pred: np.ndarray, out: str | None) -> None:
    if out is not None and out.lower().endswith(".npz"):
        atomic_write(out, lambda f: np.savez(f, y=pred.astype(str) if pred.dtype == object else pred))
        print(f"wrote {pred.shape[0]} predictions to {out}")
        return
    cols = ["prediction"] if pred.ndim == 1 else [f"prediction_{j}" for j in range(pred.shape[1])]
    rows = pred[:, None] if pred.ndim == 1 else pred
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows([_fmt(v) for v in r] for r in rows)
    if out is None:
        sys.stdout.write(text.getvalue())
        return
    atomic_write(out, lambda f: f.write(text.getvalue().encode("utf-8")))
    print(f"wrote {pred.shape[0]} predictions to {out}")


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.7g}"
    return _cell(str(v))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP's CSV injection advice:
    a cell starting with = + - @ tab or carriage return gets a leading single quote);
    a plain number ("-1.5") stays as it is."""
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cmd_export(args) -> int:
    if not args.out.endswith(".onnx"):
        raise UsageError(f"argument out: the ONNX file must end in .onnx, got {args.out!r}")
    _check_output("out", args.out)
    from . import onnx_export

    onnx_export._onnx()  # missing onnx: say so before reading anything
    model = load(args.model, xp="numpy")
    path = model.to_onnx(args.out)
    print(f"wrote {path}: {len(model.layers)} layers, {model.n_in} inputs -> {model.n_out} outputs, "
          f"{model.dtype_name}, opset {onnx_export.OPSET}")
    return 0


def cmd_bench(args) -> int:
    print(f"one Adam training step, {args.features}-{args.hidden}-{args.hidden}-10 ReLU, batch "
          f"{args.batch_size}, {args.dtype}, mean of {args.steps} steps:")
    for name, result in sysinfo.bench_rows(n_in=args.features, hidden=args.hidden, batch=args.batch_size,
                                           steps=args.steps, dtype=args.dtype):
        print(f"  {name:<17} {result}")
    return 0


def cmd_info(args) -> int:
    print("\n".join(sysinfo.info_lines()))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
            "bench": cmd_bench, "info": cmd_info}
