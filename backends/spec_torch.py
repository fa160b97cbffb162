from backends import Backend


def _sync(torch):
    if torch.cuda.is_available():
        torch.cuda.synchronize()


SPEC = Backend(
    name="torch",
    module="torch",
    # exactly this CPU build: it is on the reference machines, and a plain
    # `torch` pulls several GB of CUDA libraries.
    requirement="torch==2.13.0",
    exact_pin=True,
    dtypes=("float32", "float64", "float16"),
    writeable=True,
    sync=_sync,
)
