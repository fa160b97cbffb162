from backends import Backend

SPEC = Backend(
    name="numpy",
    module="numpy",
    requirement="numpy>=1.26",
    dtypes=("float32", "float64", "float16"),
    writeable=True,
    base=True,  # a dependency of nnbackprop: nothing more to install
)
