from backends import Backend


def _freeze(a):
    a.flags.writeable = False


# NumPy with every array the tests hand the library read-only (as arrays from
# np.broadcast_to, a memory map opened "r", or another library's buffer are):
# catches code that writes into its caller's arrays. The library's own arrays
# stay writeable, so its in-place paths still run on what it allocates.
SPEC = Backend(
    name="numpy_readonly",
    module="numpy",
    requirement="numpy>=1.26",
    dtypes=("float32", "float64", "float16"),
    writeable=True,
    base=True,
    benchmarked=False,
    freeze=_freeze,
)
